"""The v1 API: /{tenant_id}/stacks and /{tenant_id}/stacks/{stack_name}."""
from heat_api import application_url, json_response


def app_factory(global_conf, **local_conf):
    names = local_conf.get('stacks', '').split()

    def stack(environ, tenant, name):
        return {'id': '%s-%s' % (tenant, name), 'stack_name': name,
                'stack_status': 'CREATE_COMPLETE',
                'links': [{'rel': 'self', 'href': '%s/%s/stacks/%s' % (
                    application_url(environ), tenant, name)}]}

    def application(environ, start_response):
        parts = environ.get('PATH_INFO', '').strip('/').split('/')
        if environ['REQUEST_METHOD'] not in ('GET', 'HEAD'):
            return json_response(start_response, '405 Method Not Allowed',
                                 {'code': 405, 'title': 'Method Not Allowed'},
                                 [('Allow', 'GET, HEAD')])
        if len(parts) == 2 and parts[1] == 'stacks':
            return json_response(start_response, '200 OK', {
                'stacks': [stack(environ, parts[0], n) for n in names]})
        if len(parts) == 3 and parts[1] == 'stacks' and parts[2] in names:
            return json_response(start_response, '200 OK',
                                 {'stack': stack(environ, parts[0], parts[2])})
        if len(parts) == 3 and parts[1] == 'stacks' and parts[2] == 'boom':
            raise RuntimeError('the engine is unreachable')
        return json_response(start_response, '404 Not Found',
                             {'code': 404, 'title': 'Not Found'})
    return application
