"""WSGI entry point of the sample Antenna (Falcon) service.

apache-conf/sites-available/antenna.conf runs it in a daemon group sized
like Antenna's Gunicorn workers.
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
# The antenna package sits beside this file.
if here not in sys.path:
    sys.path.insert(0, here)

from antenna.app import get_app  # noqa: E402

application = get_app()
