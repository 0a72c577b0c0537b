"""The Falcon test app: the API of ../README.md. Falcon has no URL
generator; req.root_path (SCRIPT_NAME) and req.prefix (scheme, host and
SCRIPT_NAME) are what its apps build links from."""
import falcon


class ProcessGroup:
    """Middleware: every response names the process group."""

    def process_response(self, req, resp, resource, req_succeeded):
        resp.set_header('X-Process-Group',
                        req.env.get('mod_wsgi.process_group', ''))


def item_path(req, item_id):
    return '%s/items/%d' % (req.root_path, item_id)


class Index:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = 'framework=falcon\nitem=%s\nitem_abs=%s\n' % (
            item_path(req, 7), '%s/items/%d' % (req.prefix, 7))


class Item:
    def on_get(self, req, resp, item_id):
        resp.media = {'id': item_id, 'self': item_path(req, item_id)}
        resp.set_header('X-Item-Id', str(item_id))


class Greet:
    def on_post(self, req, resp):
        form = req.get_media()  # application/x-www-form-urlencoded -> dict
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = 'hello %s (%s)' % (form['name'], form['lang'])


class Old:
    def on_get(self, req, resp):
        raise falcon.HTTPFound(item_path(req, 1))


application = falcon.App(middleware=[ProcessGroup()])
application.add_route('/', Index())
application.add_route('/items/{item_id:int}', Item())
application.add_route('/greet', Greet())
application.add_route('/old', Old())
