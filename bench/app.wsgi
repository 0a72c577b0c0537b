"""Benchmark WSGI application for bench/run.

One script serves every workload, dispatched on PATH_INFO:
  /hello   13-byte "Hello, World!"
  /10k     10 KiB body
  /1m      1 MiB body
  /echo    reads the request body from wsgi.input and returns it
  /stream  100 small chunks yielded one by one (no Content-Length)
  /flask   "Hello, World!" from a Flask view
  /stamp   "pid=PID t=TIME": which process served, and when (bench/run kill)
  /raise   raises (500 and a traceback in the error log; bench/soak)
"""

import os
import time

import flask

HELLO = b"Hello, World!"
BODY_10K = b"x" * 10240
BODY_1M = b"x" * (1024 * 1024)
CHUNK = b"chunk-of-the-stream-0123456789\n"

flask_app = flask.Flask(__name__)


@flask_app.route("/flask")
def flask_hello():
    return "Hello, World!"


def _fixed(start_response, body, ctype=b"text/plain"):
    start_response(
        "200 OK",
        [("Content-Type", ctype.decode()), ("Content-Length", str(len(body)))],
    )
    return [body]


def _stream():
    for _ in range(100):
        yield CHUNK


def application(environ, start_response):
    path = environ.get("PATH_INFO") or "/"
    if path == "/hello":
        return _fixed(start_response, HELLO)
    if path == "/10k":
        return _fixed(start_response, BODY_10K)
    if path == "/1m":
        return _fixed(start_response, BODY_1M)
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        stream = environ["wsgi.input"]
        parts = []
        while length > 0:
            data = stream.read(min(length, 65536))
            if not data:
                break
            parts.append(data)
            length -= len(data)
        return _fixed(start_response, b"".join(parts), b"application/octet-stream")
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream()
    if path == "/flask":
        return flask_app(environ, start_response)
    if path == "/stamp":
        return _fixed(start_response, b"pid=%d t=%.6f\n" % (os.getpid(), time.time()))
    if path == "/raise":
        raise RuntimeError("bench/soak: this request fails on purpose")
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
