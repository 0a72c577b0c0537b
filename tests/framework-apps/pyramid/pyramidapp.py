"""The Pyramid test app: the API of ../README.md with Pyramid's routes,
WebOb's form parsing, and request.route_path/route_url (which include
SCRIPT_NAME)."""
from pyramid.config import Configurator
from pyramid.events import NewResponse
from pyramid.httpexceptions import HTTPFound
from pyramid.response import Response


def index(request):
    body = 'framework=%s\nitem=%s\nitem_abs=%s\n' % (
        request.registry.settings['framework_name'],
        request.route_path('item', id=7), request.route_url('item', id=7))
    return Response(body, content_type='text/plain', charset='utf-8')


def item(request):
    item_id = int(request.matchdict['id'])
    request.response.headers['X-Item-Id'] = str(item_id)
    return {'id': item_id, 'self': request.route_path('item', id=item_id)}


def greet(request):
    body = 'hello %s (%s)' % (request.POST['name'], request.POST['lang'])
    return Response(body, content_type='text/plain', charset='utf-8')


def old(request):
    return HTTPFound(location=request.route_url('item', id=1))


def add_process_group(event):
    event.response.headers['X-Process-Group'] = event.request.environ.get(
        'mod_wsgi.process_group', '')


def main(global_config, **settings):
    """The PasteDeploy app factory named by production.ini."""
    with Configurator(settings=settings) as config:
        config.add_route('index', '/')
        config.add_route('item', r'/items/{id:\d+}')
        config.add_route('greet', '/greet', request_method='POST')
        config.add_route('old', '/old')
        config.add_view(index, route_name='index')
        config.add_view(item, route_name='item', renderer='json')
        config.add_view(greet, route_name='greet')
        config.add_view(old, route_name='old')
        config.add_subscriber(add_process_group, NewResponse)
        return config.make_wsgi_app()
