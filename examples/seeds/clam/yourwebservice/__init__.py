"""A tiny CLAM-style web service (Flask): an XML index of the service for
authenticated users, a public /info, and static files that Apache serves
itself.

Every response the application makes carries `X-Served-By: yourwebservice`,
so a response without it (the files under /static) came from Apache.
"""
import base64
import hashlib
import hmac
import os
from xml.sax.saxutils import quoteattr

from flask import Flask, Response, request, url_for

from yourwebservice import config

REALM = config.SYSTEM_ID

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'static')


def check_basic_auth(header):
    """The user named by a valid `Authorization: Basic ...` header, or None."""
    scheme, _, encoded = header.partition(' ')
    if scheme.lower() != 'basic':
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode('utf-8').partition(':')
    except ValueError:
        return None
    expected = config.USERS.get(user)
    given = hashlib.sha256(password.encode('utf-8')).hexdigest()
    if expected is None or not hmac.compare_digest(expected, given):
        return None
    return user


def create_app():
    # Flask could serve static/ too; under Apache the Alias in clam.conf
    # answers those URLs before the application sees them.
    app = Flask(__name__, static_folder=STATIC_DIR)

    @app.after_request
    def served_by(response):
        response.headers['X-Served-By'] = config.SYSTEM_ID
        return response

    @app.route('/')
    def index():
        user = check_basic_auth(request.headers.get('Authorization', ''))
        if user is None:
            return Response('authentication required\n', 401, {
                'WWW-Authenticate': 'Basic realm="%s"' % REALM,
                'Content-Type': 'text/plain'})
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               '<clam system_id=%s name=%s version=%s user=%s baseurl=%s'
               ' stylesheet=%s />\n') % tuple(quoteattr(v) for v in (
                   config.SYSTEM_ID, config.SYSTEM_NAME, config.SYSTEM_VERSION,
                   user, url_for('index', _external=True),
                   url_for('static', filename='style.css')))
        return Response(xml, 200, {'Content-Type': 'text/xml; charset=utf-8'})

    @app.route('/info')
    def info():
        # Public, for monitoring and for checking a deployment: which
        # version runs, and the mount point (SCRIPT_NAME) it was given.
        return {'system_id': config.SYSTEM_ID,
                'system_version': config.SYSTEM_VERSION,
                'mount_point': request.environ.get('SCRIPT_NAME'),
                'path_info': request.environ.get('PATH_INFO')}

    return app
