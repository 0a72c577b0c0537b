"""WSGI entry point of a CLAM-style web service, as clamnewproject
generates one: it only imports the application.

apache-conf/sites-available/clam.conf runs it in a daemon group mounted at
/yourwebservice. To deploy a code change, edit the package and `touch` this
file: the daemon processes are replaced and import everything afresh.
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
# The service package sits beside this file.
if here not in sys.path:
    sys.path.insert(0, here)

from yourwebservice import create_app  # noqa: E402

application = create_app()
