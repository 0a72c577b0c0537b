"""The ASGI server of a mod_wsgi_rs daemon process (loaded by src/asgi/mod.rs
as the module _wsgi_rs_asgi, once per interpreter): the event loop and its
executor, and the requests handed over to it.

One event loop per application group runs on its own thread. A daemon worker
thread reads a request's vars, checks them and hands the connection over
(through the inbox the Rust side drains on the loop, or `Server.submit`,
thread-safe); from then on the loop owns a duplicate of the connection's
descriptor, and a `Connection` (connection.py) speaks the daemon protocol on
it with non-blocking I/O until the response has ended, then calls
`done(keep)`, which gives the connection back to the daemon's epoll set for
the client's next request, or closes it. Each application's lifespan
(lifespan.py) starts before its first request.
"""

import asyncio
import socket
import concurrent.futures
from concurrent.futures import ThreadPoolExecutor

# Loaded before this module by src/asgi/mod.rs.
from _wsgi_rs_asgi_connection import Connection
from _wsgi_rs_asgi_lifespan import Lifespan


class Wire:
    """The daemon protocol's bytes, given by the Rust side (one declaration)."""

    def __init__(self, cont, end_keep, end_close, max_frame, internal_header, errors):
        self.cont = cont
        self.end_keep = end_keep
        self.end_close = end_close
        self.max_frame = max_frame
        self.internal_header = internal_header.lower().encode("latin-1")
        # (status, framed) -> the error answer's bytes.
        self.errors = errors


class Server:
    """One application group's event loop and what runs on it."""

    def __init__(self, group, threads, request_timeout, shutdown_timeout, wire, hooks, inbox):
        self.group = group
        # inbox: (fd, drain): the fd is readable when requests handed over
        # without the GIL wait; drain(begin) starts each with begin(...),
        # which takes submit()'s arguments.
        self.inbox = inbox
        self.wire = wire
        self.request_timeout = request_timeout
        self.shutdown_timeout = shutdown_timeout
        # hooks: log(level, message), log_exception(message, exc),
        # startup_failed(reason), timed_out().
        self.log, self.log_exception, self.startup_failed, self.timed_out = hooks
        try:
            import uvloop
        except ImportError:
            self.loop = asyncio.new_event_loop()
            self.loop_name = "asyncio"
        else:
            self.loop = uvloop.new_event_loop()
            self.loop_name = "uvloop"
        # threads= bounds the executor run_in_executor(None, ...) uses
        # (and with it asyncio.to_thread and asgiref's sync_to_async).
        self.loop.set_default_executor(
            ThreadPoolExecutor(max_workers=max(threads, 1), thread_name_prefix="asgi-executor")
        )
        self.lifespans = {}
        self.stopping = False
        try:
            import mod_wsgi
        except ImportError:
            pass
        else:
            mod_wsgi.subscribe_shutdown(self._process_stopping)

    def run(self):
        """Runs the loop on the calling thread until the process exits."""
        asyncio.set_event_loop(self.loop)
        fd, drain = self.inbox
        self.loop.add_reader(fd, drain, self._begin)
        self.loop.run_forever()

    def submit(self, app, fd, scope, body_mode, body, left, framed, keep_alive, script, done):
        """Hands over one request (any thread)."""
        self.loop.call_soon_threadsafe(
            self._begin, app, fd, scope, body_mode, body, left, framed, keep_alive, script, done
        )

    def submit_task(self, app, start, script, failure, done):
        """Hands over a connection that leaves the HTTP protocol (a
        WebSocket, src/daemon/websocket) from any thread: after the
        application's lifespan startup, awaits `start(state)` (state None
        when the startup failed), logs what it raises under `failure`, then
        calls done(False): such a connection never carries another request."""
        self.loop.call_soon_threadsafe(self._begin_task, app, start, script, failure, done)

    def preload(self, app, script):
        """Runs the application's lifespan startup before any request (any
        thread); returns at once."""
        self.loop.call_soon_threadsafe(self._lifespan, app, script)

    def _begin(self, *args):
        self.loop.create_task(self._serve(*args))

    def _begin_task(self, *args):
        self.loop.create_task(self._task(*args))

    async def _task(self, app, start, script, failure, done):
        try:
            lifespan = self._lifespan(app, script)
            if not lifespan.ready.done():
                await asyncio.shield(lifespan.ready)
            await start(lifespan.state.copy() if lifespan.ready.result() else None)
        except Exception as exc:
            self.log_exception(failure, exc)
        finally:
            done(False)

    def _lifespan(self, app, script):
        lifespan = self.lifespans.get(id(app))
        if lifespan is None:
            lifespan = self.lifespans[id(app)] = Lifespan(self, app, script)
        return lifespan

    async def _serve(self, app, fd, scope, body_mode, body, left, framed, keep_alive, script, done):
        conn = Connection(self, scope, body_mode, body, left, framed, keep_alive, script, done)
        # Family and type given: without them Python asks the kernel.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fd)
        try:
            await self.loop.connect_accepted_socket(lambda: conn, sock)
        except BaseException:
            sock.close()
            conn.release(False)
            raise
        lifespan = self._lifespan(app, script)
        if not lifespan.ready.done():
            await asyncio.shield(lifespan.ready)
        if not lifespan.ready.result():
            conn.error(500)
            return
        scope["state"] = lifespan.state.copy()
        await conn.run(app)

    def _process_stopping(self, name, **event):
        """mod_wsgi's process_stopping event: the lifespan shutdown of every
        application, on the loop, before the process exits."""
        self.stopping = True
        if not self.lifespans:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
        try:
            future.result(self.shutdown_timeout or None)
        except concurrent.futures.TimeoutError:
            future.cancel()
            self.log(
                "error",
                "WSGIRS512: (wsgi:%s) ASGI lifespan shutdown did not finish within %gs"
                % (self.group, self.shutdown_timeout),
            )
        except Exception as exc:
            self.log_exception(
                "WSGIRS512: (wsgi:%s) ASGI lifespan shutdown failed." % self.group, exc
            )

    async def _shutdown(self):
        for lifespan in list(self.lifespans.values()):
            await lifespan.shutdown()
