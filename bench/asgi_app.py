"""Benchmark ASGI application for `bench/run --suite asgi`.

A plain ASGI 3 callable (no framework, so the figures are the servers'),
dispatched on the path:
  /json    {"message": "Hello, World!"} as application/json
  /stream  100 chunks of 31 bytes, one `send` each (more_body)
  /await   awaits asyncio.sleep(AWAIT_SECONDS), then answers 5 bytes
The same file is served by mod_wsgi_rs (WSGIScriptAlias, daemon group),
uvicorn and Granian (`asgi_app:application`).
"""

import asyncio
import json

AWAIT_SECONDS = 0.25
JSON = json.dumps({"message": "Hello, World!"}).encode()
CHUNK = b"chunk-of-the-stream-0123456789\n"


async def _read_body(receive):
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)


async def _answer(send, body, ctype=b"text/plain"):
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    await _read_body(receive)
    if path == "/json":
        await _answer(send, JSON, b"application/json")
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for _ in range(100):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/await":
        await asyncio.sleep(AWAIT_SECONDS)
        await _answer(send, b"slept")
    else:
        await _answer(send, b"not found")
