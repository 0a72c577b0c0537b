"""RelengAPI's WSGI entry point, shaped like Mozilla's production one.

It activates the virtualenv, sends application logging to Apache's error
log, names the settings file in an environment variable and builds the Flask
app with create_app(). apache-conf/sites-available/relengapi.conf mounts it.
"""
import os
import sys

this_dir = os.path.dirname(os.path.abspath(__file__))

# Activate the virtualenv holding RelengAPI's dependencies. Mozilla's file ran
# virtualenv's activate_this.py; venvs made by `python3 -m venv` have no such
# file, so do what it does: put the venv's site-packages (with its .pth files)
# in front of sys.path. When Apache already runs Python in this venv
# (WSGIPythonHome, as relengapi.conf sets it) there is nothing to do.
venv = os.path.join(this_dir, 'virtualenv')
if os.path.isdir(venv) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
    import site

    site_packages = os.path.join(
        venv, 'lib', 'python%d.%d' % sys.version_info[:2], 'site-packages')
    before = list(sys.path)
    site.addsitedir(site_packages)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before

# In production the relengapi package is pip-installed into the virtualenv;
# this sample keeps it beside this file.
if this_dir not in sys.path:
    sys.path.insert(0, this_dir)

# Set up application logging.
import logging  # noqa: E402

root = logging.getLogger('')
root.setLevel(logging.NOTSET)
# Apache stamps each line with the time, the level and the client already.
formatter = logging.Formatter('[%(name)s] %(message)s')
try:
    # mod_wsgi_rs: records keep their level in the error log
    # (log.info -> [wsgi_rs:info]), so LogLevel filters them as Apache's own.
    import mod_wsgi

    apache_log = mod_wsgi.ApacheLogHandler()
except (ImportError, AttributeError):
    # Elsewhere (mod_wsgi, a development server) stderr reaches the error
    # log too, every line at the error level.
    apache_log = logging.StreamHandler(sys.stderr)
apache_log.setLevel(logging.INFO)
apache_log.setFormatter(formatter)
# Apache re-runs this file when it changes (WSGIScriptReloading): replace the
# handler a previous run installed instead of logging every line twice.
for old in [h for h in root.handlers if getattr(h, 'relengapi_apache_log', False)]:
    root.removeHandler(old)
apache_log.relengapi_apache_log = True
root.addHandler(apache_log)

# Load the WSGI app with its settings.
os.environ['RELENGAPI_SETTINGS'] = os.path.join(this_dir, 'settings.py')

from relengapi.app import create_app  # noqa: E402

application = create_app()
