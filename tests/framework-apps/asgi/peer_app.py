"""An ASGI application that detection cannot see (its __call__ is a plain
function returning a coroutine), so only interface=asgi serves it: the
default application of its group (WSGIImportScript ... interface=asgi),
which mod_proxy_uwsgi peers get. It reports what it received and records
each request's query string under var/ (to prove a refused request never
ran)."""

import hashlib
import os

VAR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var")


class Peer:
    def __call__(self, scope, receive, send):
        return self.handle(scope, receive, send)

    async def handle(self, scope, receive, send):
        if scope["type"] != "http":
            return
        open(os.path.join(VAR, "ran-" + scope["query_string"].decode()), "w").close()
        digest = hashlib.sha256()
        length = 0
        while True:
            message = await receive()
            body = message.get("body", b"")
            length += len(body)
            digest.update(body)
            if not message.get("more_body"):
                break
        leaked = sorted(
            k.decode() for k, _ in scope["headers"] if b"wsgi-rs" in k or b"secret" in k
        )
        text = "method=%s\nquery=%s\npath=%s\nlength=%d\nsha=%s\nleaked=%s\n" % (
            scope["method"],
            scope["query_string"].decode(),
            scope["path"],
            length,
            digest.hexdigest(),
            ",".join(leaked),
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": text.encode()})


application = Peer()
