"""The filters of the heat-api pipeline (see api-paste.ini). Each is a
PasteDeploy filter factory: called with the configuration, it returns a
function that wraps the next application of the pipeline."""
import sys
import traceback
import uuid

from heat_api import application_url, json_response


def request_id_filter(global_conf, **local_conf):
    """Gives every request an id, returned as x-openstack-request-id."""
    def wrap(app):
        def middleware(environ, start_response):
            request_id = 'req-%s' % uuid.uuid4()
            environ['openstack.request_id'] = request_id

            def start(status, headers, exc_info=None):
                return start_response(
                    status, headers + [('x-openstack-request-id', request_id)],
                    exc_info)
            return app(environ, start)
        return middleware
    return wrap


def faultwrap_filter(global_conf, **local_conf):
    """Turns an unexpected exception into a JSON fault instead of a bare 500,
    and logs the traceback (which reaches Apache's error log)."""
    def wrap(app):
        def middleware(environ, start_response):
            try:
                return app(environ, start_response)
            except Exception as e:  # the whole point of this filter
                traceback.print_exc(file=environ['wsgi.errors'])
                fault = {'code': 500, 'title': 'Internal Server Error',
                         'error': {'type': type(e).__name__, 'message': str(e)}}
                return json_response(start_response,
                                     '500 Internal Server Error', fault,
                                     exc_info=sys.exc_info())
        return middleware
    return wrap


def version_negotiation_filter(global_conf, **local_conf):
    """Answers `/` with the API versions; passes /v1/... on with /v1 moved
    from PATH_INFO to SCRIPT_NAME, so the application routes below it."""
    def wrap(app):
        def middleware(environ, start_response):
            path = environ.get('PATH_INFO', '')
            if path in ('', '/'):
                versions = {'versions': [{
                    'id': 'v1.0', 'status': 'CURRENT',
                    'links': [{'rel': 'self',
                               'href': application_url(environ) + '/v1/'}],
                }]}
                return json_response(start_response, '300 Multiple Choices',
                                     versions)
            if path == '/v1' or path.startswith('/v1/'):
                environ['SCRIPT_NAME'] = environ.get('SCRIPT_NAME', '') + '/v1'
                environ['PATH_INFO'] = path[3:]
                return app(environ, start_response)
            return json_response(start_response, '404 Not Found',
                                 {'code': 404, 'title': 'Not Found'})
        return middleware
    return wrap
