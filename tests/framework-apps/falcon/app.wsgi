"""Entry point of the Falcon test app (see ../README.md)."""
from falconapp import application  # noqa: F401
