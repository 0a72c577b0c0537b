"""The ASGI lifespan protocol in a mod_wsgi_rs daemon process (loaded by
src/asgi/mod.rs as the module _wsgi_rs_asgi_lifespan, once per interpreter,
before server.py, which imports it).

An application's startup runs once per process, before its first request
(or at start-up for a preloaded script); a failed startup stops the
process; its shutdown runs from mod_wsgi's `process_stopping` event, so at
a graceful stop.
"""

import asyncio

_LIFESPAN_ASGI = {"version": "3.0", "spec_version": "2.0"}


class Lifespan:
    """An application's lifespan protocol: startup once per process, before
    its first request, and shutdown when the process stops gracefully."""

    def __init__(self, server, app, script):
        self.server = server
        self.app = app
        self.script = script
        self.state = {}
        loop = server.loop
        self.ready = loop.create_future()
        self.stopped = loop.create_future()
        self.inbox = asyncio.Queue()
        self.failed = None
        self.logged = False
        self.supported = True
        self.task = loop.create_task(self._run())

    async def _run(self):
        scope = {"type": "lifespan", "asgi": _LIFESPAN_ASGI, "state": self.state}
        self.inbox.put_nowait({"type": "lifespan.startup"})
        server = self.server
        try:
            await self.app(scope, self.inbox.get, self._send)
        except BaseException as exc:
            if self.failed is not None:
                self.logged = True
                server.log_exception(
                    "WSGIRS510: (wsgi:%s) ASGI lifespan startup of '%s' failed; the process "
                    "stops." % (server.group, self.script),
                    exc,
                )
            elif not self.ready.done():
                # Per the spec, an application that raises on the lifespan
                # scope does not support it: serve without.
                self.supported = False
                server.log(
                    "info",
                    "WSGIRS511: (wsgi:%s) the ASGI application '%s' does not support the "
                    "lifespan protocol (it raised %s); serving without it"
                    % (server.group, self.script, type(exc).__name__),
                )
            elif not isinstance(exc, asyncio.CancelledError):
                server.log_exception(
                    "WSGIRS512: (wsgi:%s) ASGI lifespan of '%s' raised."
                    % (server.group, self.script),
                    exc,
                )
        finally:
            if self.failed is not None and not self.logged:
                # startup.failed without an exception: its message, line by line.
                lines = str(self.failed).rstrip().splitlines() or ["(no message)"]
                server.log(
                    "error",
                    "WSGIRS510: (wsgi:%s) ASGI lifespan startup of '%s' failed; the process "
                    "stops: %s" % (server.group, self.script, lines[0]),
                )
                for line in lines[1:]:
                    server.log("error", line)
            if not self.ready.done():
                self.supported = False
                self.ready.set_result(True)
            if not self.stopped.done():
                self.stopped.set_result(None)

    async def _send(self, message):
        kind = message["type"]
        server = self.server
        if kind == "lifespan.startup.complete":
            if not self.ready.done():
                self.ready.set_result(True)
        elif kind == "lifespan.startup.failed":
            # Logged when the application raises (with the traceback) or
            # returns.
            self.failed = message.get("message", "") or "(no message)"
            if not self.ready.done():
                self.ready.set_result(False)
            server.startup_failed("ASGI lifespan startup failed")
        elif kind == "lifespan.shutdown.complete":
            if not self.stopped.done():
                self.stopped.set_result(None)
        elif kind == "lifespan.shutdown.failed":
            server.log(
                "error",
                "WSGIRS512: (wsgi:%s) ASGI lifespan shutdown of '%s' failed: %s"
                % (server.group, self.script, message.get("message", "")),
            )
            if not self.stopped.done():
                self.stopped.set_result(None)
        else:
            raise RuntimeError("unexpected lifespan message %r" % (kind,))

    async def shutdown(self):
        if not self.supported or self.task.done() or not self.ready.done():
            return
        if not self.ready.result():
            return
        self.inbox.put_nowait({"type": "lifespan.shutdown"})
        await asyncio.shield(self.stopped)
