# Shows the WSGI environ the module builds, as an HTML table; ?format=json
# returns it as JSON (objects that are not strings are shown with repr()).
import html
import json
import sys


def application(environ, start_response):
    query = environ.get("QUERY_STRING", "")
    items = sorted((k, v if isinstance(v, str) else repr(v)) for k, v in environ.items())
    if "format=json" in query:
        body = json.dumps(dict(items), indent=2).encode()
        ctype = "application/json"
    else:
        rows = "".join(
            "<tr><td>%s</td><td>%s</td></tr>" % (html.escape(k), html.escape(v)) for k, v in items
        )
        body = (
            "<!doctype html><title>WSGI environ</title><h1>WSGI environ</h1>"
            "<p>Python %s</p><table>%s</table>" % (html.escape(sys.version), rows)
        ).encode()
        ctype = "text/html; charset=utf-8"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
