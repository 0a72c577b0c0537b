# The smallest WSGI application: served by `examples/serve` and the README's
# first command.
def application(environ, start_response):
    body = b"Hello from mod_wsgi_rs!\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
