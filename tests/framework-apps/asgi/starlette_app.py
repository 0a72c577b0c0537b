"""The Starlette application of the ASGI integration tests
(tests/integration/asgi.rs), mounted at /api of a daemon group.

Its lifespan puts a value in the state every request's scope gets a copy
of; /sleep records how many requests awaited at once; /stream and /forever
stream their response; /upload reads the body as it arrives. Files it
writes go to the directory named by WSGI_TEST_VAR (the server's var/)."""

import asyncio
import contextlib
import hashlib
import json
import os
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

VAR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var")
_running = 0
_most = 0


@contextlib.asynccontextmanager
async def lifespan(app):
    with open(os.path.join(VAR, "lifespan-%d" % os.getpid()), "a") as f:
        f.write("startup\n")
    yield {"greeting": "hello from lifespan", "pid": os.getpid()}
    with open(os.path.join(VAR, "lifespan-%d" % os.getpid()), "a") as f:
        f.write("shutdown\n")


async def info(request: Request):
    scope = request.scope
    return JSONResponse(
        {
            "framework": "starlette",
            "type": scope["type"],
            "asgi": scope["asgi"],
            "http_version": scope["http_version"],
            "method": scope["method"],
            "scheme": scope["scheme"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "query_string": scope["query_string"].decode("latin-1"),
            "root_path": scope["root_path"],
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "client": list(scope["client"]),
            "server": list(scope["server"]),
            "state": request.state.greeting,
            "url": str(request.url),
            "url_for": str(request.url_for("item", n=7)),
            "loop": type(asyncio.get_running_loop()).__module__,
            "pid": os.getpid(),
            "uid": os.getuid(),
        }
    )


async def item(request: Request):
    return JSONResponse({"id": request.path_params["n"]}, headers={"X-Item": "yes"})


async def sleep(request: Request):
    """Awaits `s` seconds; with `together=N`, first until N requests have
    been awaiting at once (or 10 s passed), so the test waits on a
    condition rather than on how fast a loaded machine sends requests."""
    global _running, _most
    _running += 1
    _most = max(_most, _running)
    try:
        together = int(request.query_params.get("together", "0"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while _most < together and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(float(request.query_params.get("s", "0.5")))
    finally:
        _running -= 1
    return JSONResponse({"most": _most, "pid": os.getpid()})


async def stream(request: Request):
    async def parts():
        for i in range(int(request.query_params.get("n", "5"))):
            yield ("part %d\n" % i).encode()
            await asyncio.sleep(0.01)

    return StreamingResponse(parts(), media_type="text/plain")


async def forever(request: Request):
    """Streams until the client goes away, then records that it saw it."""
    marker = os.path.join(VAR, "disconnected-" + request.query_params["id"])

    async def parts():
        try:
            while True:
                yield b"x" * 1024 + b"\n"
                await asyncio.sleep(0.02)
        finally:
            pass

    async def watch():
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                with open(marker, "w") as f:
                    f.write("http.disconnect\n")
                return

    # The body is empty; after it, receive() reports the disconnect.
    task = asyncio.ensure_future(watch())
    request.state.watch = task
    return StreamingResponse(parts(), media_type="text/plain")


async def upload(request: Request):
    digest = hashlib.sha256()
    size = 0
    chunks = 0
    async for chunk in request.stream():
        if chunk:
            chunks += 1
            size += len(chunk)
            digest.update(chunk)
    return JSONResponse({"size": size, "sha256": digest.hexdigest(), "chunks": chunks})


async def fail(request: Request):
    raise RuntimeError("asgi failure on purpose")


async def fail_midway(request: Request):
    async def parts():
        yield b"first part\n"
        raise RuntimeError("asgi failure after the response started")

    return StreamingResponse(parts(), media_type="text/plain")


async def big(request: Request):
    """Streams `mb` MiB in 1 MiB parts, each await waiting while the
    client is slow to read (flow control), then a checksum trailer line."""
    mb = int(request.query_params.get("mb", "1"))
    part = bytes(range(256)) * 4096

    async def parts():
        for _ in range(mb):
            yield part

    return StreamingResponse(parts(), media_type="application/octet-stream")


app = Starlette(
    routes=[
        Route("/info", info),
        Route("/items/{n:int}", item, name="item"),
        Route("/sleep", sleep),
        Route("/stream", stream),
        Route("/forever", forever),
        Route("/upload", upload, methods=["POST"]),
        Route("/fail", fail),
        Route("/fail-midway", fail_midway),
        Route("/big", big, methods=["GET", "HEAD"]),
    ],
    lifespan=lifespan,
)
