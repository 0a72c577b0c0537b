"""A tiny stand-in for RelengAPI: just enough to deploy it like the real one."""
