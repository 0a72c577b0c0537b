# Streaming and upload demo.
#   GET  /stream?n=5   -> n lines, one every half second (watch with curl -N)
#   POST /upload       -> reads the body in 64 KiB blocks, answers size + sha256
#   GET  /             -> a small form to upload a file
import hashlib
import time
from urllib.parse import parse_qs


def stream(environ, start_response):
    n = int(parse_qs(environ.get("QUERY_STRING", "")).get("n", ["5"])[0])
    start_response("200 OK", [("Content-Type", "text/plain")])
    for i in range(n):
        yield ("line %d of %d at %.1f\n" % (i + 1, n, time.time())).encode()
        time.sleep(0.5)


def upload(environ, start_response):
    digest = hashlib.sha256()
    size = 0
    stream = environ["wsgi.input"]
    while True:
        block = stream.read(65536)
        if not block:
            break
        size += len(block)
        digest.update(block)
    body = ("received %d bytes, sha256 %s\n" % (size, digest.hexdigest())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


FORM = b"""<!doctype html><title>upload</title>
<form method=post action=upload enctype=application/octet-stream>
<input type=file name=f><button>send</button></form>
<p><a href=stream?n=5>stream 5 lines</a></p>"""


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/stream":
        return stream(environ, start_response)
    if path == "/upload" and environ["REQUEST_METHOD"] == "POST":
        return upload(environ, start_response)
    start_response("200 OK", [("Content-Type", "text/html")])
    return [FORM]
