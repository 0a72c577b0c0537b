"""WSGI entry point of the sample Heat API, like the heat-wsgi-api script
that Heat ships: the application is the `heat-api` pipeline of
api-paste.ini, assembled by PasteDeploy.

apache-conf/sites-available/heat-api.conf serves it from a mod_wsgi_rs
daemon group; uwsgi-heat-api.conf serves the same file to mod_proxy_uwsgi.
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
# The heat_api package sits beside this file (a real Heat is pip-installed).
if here not in sys.path:
    sys.path.insert(0, here)

from paste.deploy import loadapp  # noqa: E402

application = loadapp('config:' + os.path.join(here, 'api-paste.ini'),
                      name='heat-api')
