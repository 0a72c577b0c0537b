"""Entry point of the Flask test app (see ../README.md)."""
from flaskapp import app as application  # noqa: F401
