"""A tiny stand-in for Heat's orchestration API (pure WSGI, no framework):
enough of its shape (PasteDeploy pipeline, JSON, request ids, version
negotiation) to deploy it as Heat is deployed."""
import json


def json_response(start_response, status, document, headers=(),
                  exc_info=None):
    """Sends `document` as a JSON body; returns the WSGI iterable."""
    body = json.dumps(document, sort_keys=True).encode('utf-8')
    start_response(status, [('Content-Type', 'application/json'),
                            ('Content-Length', str(len(body)))] + list(headers),
                   exc_info)
    return [body]


def application_url(environ):
    """scheme://host/mount-point: where this application is mounted."""
    host = environ.get('HTTP_HOST') or '%s:%s' % (environ['SERVER_NAME'],
                                                 environ['SERVER_PORT'])
    # mod_proxy_uwsgi gives a request for exactly the mount point with a
    # slash (/heat-api/) SCRIPT_NAME '/heat-api/' and PATH_INFO '/'.
    script_name = environ.get('SCRIPT_NAME', '').rstrip('/')
    return '%s://%s%s' % (environ['wsgi.url_scheme'], host, script_name)
