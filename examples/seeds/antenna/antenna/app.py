"""The Falcon application: Antenna's health endpoints.

/__lbheartbeat__  200 while the process handles connections (load balancer)
/__heartbeat__    200 and the result of each health check as JSON (503 when
                  one fails)
/__version__      the deployed build, read from version.json
/__broken__       raises, to test error reporting: the traceback lands in
                  Apache's error log (Falcon writes it to wsgi.errors)
"""
import json
import os
import sys
import tempfile

import falcon

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LBHeartbeatResource:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = 'OK'


class HeartbeatResource:
    """Runs the health checks. Antenna checks its crash storage; this sample
    checks that the directory crashes would be written to is writable."""

    def __init__(self, crash_dir):
        self.crash_dir = crash_dir

    def check_crash_dir(self):
        try:
            with tempfile.TemporaryFile(dir=self.crash_dir):
                return None
        except OSError as e:
            return str(e)

    def on_get(self, req, resp):
        problems = {}
        error = self.check_crash_dir()
        if error:
            problems['crashstorage'] = error
        resp.media = {
            'ok': not problems,
            'errors': problems,
            'info': {'python': sys.version.split()[0],
                     'falcon': falcon.__version__},
        }
        resp.status = falcon.HTTP_503 if problems else falcon.HTTP_200


class VersionResource:
    def on_get(self, req, resp):
        with open(os.path.join(BASE_DIR, 'version.json')) as f:
            resp.media = json.load(f)


class BrokenResource:
    def on_get(self, req, resp):
        raise RuntimeError('intentional exception from /__broken__')


def get_app():
    app = falcon.App()
    app.add_route('/__lbheartbeat__', LBHeartbeatResource())
    app.add_route('/__heartbeat__', HeartbeatResource(tempfile.gettempdir()))
    app.add_route('/__version__', VersionResource())
    app.add_route('/__broken__', BrokenResource())
    return app
