"""The RelengAPI Flask application factory and its token authentication.

Clients authenticate with `Authorization: Bearer <token>`. RelengAPI reads
that header itself, so Apache must pass it on (`WSGIPassAuthorization On`):
without it every authenticated request would look anonymous and get 401.
"""
import logging
import os

from flask import Flask, abort, g, jsonify, request

log = logging.getLogger('relengapi.tokenauth')


def create_app():
    """Builds the app, configured from the file named by RELENGAPI_SETTINGS."""
    app = Flask('relengapi')
    app.config['RELENGAPI_TOKENS'] = {}
    settings = os.environ.get('RELENGAPI_SETTINGS')
    if settings:
        app.config.from_pyfile(settings)

    def authenticate():
        """The token's record, or None. Logs what it decided."""
        header = request.headers.get('Authorization', '')
        scheme, _, token = header.partition(' ')
        record = None
        if scheme.lower() == 'bearer':
            record = app.config['RELENGAPI_TOKENS'].get(token.strip())
        if record is None:
            log.warning('rejected %s %s: %s', request.method, request.path,
                        'invalid token' if header else 'no Authorization header')
        else:
            log.info('token of %s accepted for %s', record['user'], request.path)
        return record

    @app.errorhandler(401)
    def unauthorized(error):
        body = jsonify(error={'code': 401, 'name': 'Unauthorized',
                              'description': 'a valid token is required'})
        return body, 401, {'WWW-Authenticate': 'Bearer realm="relengapi"'}

    @app.route('/versions')
    def versions():
        # Public: load balancers and humans check it without a token.
        return jsonify(result={'distributions': {'relengapi': '0.0-sample'},
                               'blueprints': {'tokenauth': '0.0-sample'}})

    @app.route('/tokenauth/self')
    def tokenauth_self():
        g.token = authenticate()
        if g.token is None:
            abort(401)
        return jsonify(result={'user': g.token['user'],
                               'permissions': g.token['permissions']})

    return app
