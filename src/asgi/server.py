"""The ASGI server of a mod_wsgi_rs daemon process (loaded by src/asgi/mod.rs
as the module _wsgi_rs_asgi, once per interpreter).

One event loop per application group runs on its own thread. A daemon worker
thread reads a request's vars, checks them and hands the connection over
(`Server.submit`, thread-safe); from then on the loop owns a duplicate of the
connection's descriptor and speaks the daemon protocol on it with
non-blocking I/O (see src/daemon/protocol.rs for the wire format): the
request body in frames after the go-ahead, the response head, body frames
and the end marker. When the response has ended the loop closes its
duplicate and calls `done(keep)`, which gives the connection back to the
daemon's epoll set for the client's next request, or closes it.
"""

import asyncio
import http
import socket
import concurrent.futures
from concurrent.futures import ThreadPoolExecutor

_FRAME_HEAD = 4
_HIGH_WATER = 64 * 1024
# Request body bytes held for the application before reading pauses.
_BODY_BUFFER = 256 * 1024
# Body bytes an application left unread that are read off (and dropped)
# so the connection stays usable, as the WSGI side does.
_DRAIN_BUDGET = 4 << 20
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ASGI = {"version": "3.0", "spec_version": "2.4"}
_LIFESPAN_ASGI = {"version": "3.0", "spec_version": "2.0"}

# How the request body arrives.
BODY_MEMORY = 0  # read in full before the hand-over
BODY_FRAMED = 1  # framed, after the go-ahead
BODY_PLAIN = 2  # `left` raw bytes (plain uwsgi peers)


class ClientDisconnected(OSError):
    """send() after the client went away (ASGI spec 2.4)."""


def _reason(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


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


class Connection(asyncio.Protocol):
    """One request on one connection: its receive() and send(), the body
    read off the socket and the response written to it, with flow control
    both ways."""

    def __init__(self, server, scope, body_mode, body, left, framed, keep_alive, script, done):
        self.server = server
        self.wire = server.wire
        self.scope = scope
        self.script = script
        self.framed = framed
        self.keep_alive = keep_alive
        self.done = done
        self.head_request = scope["method"] == "HEAD"
        self.transport = None
        self.task = None
        # Request body.
        self.body_mode = body_mode
        self.chunks = [body] if body else []
        self.buffered = len(body)
        self.left = left
        self.body_done = body_mode == BODY_MEMORY or (body_mode == BODY_PLAIN and left == 0)
        self.final_given = False
        self.asked = False
        self.rbuf = bytearray()
        self.frame_left = 0
        self.read_paused = False
        self.discarding = False
        self.discarded = 0
        self.extra = False
        # Response.
        self.head = None
        self.started = False
        self.complete = False
        self.ended = False
        self.disconnected = False
        self.write_paused = False
        self.drained = None
        self.waiters = []
        self.released = False
        self.timed_out = False
        self.keep = False

    # asyncio.Protocol

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=_HIGH_WATER)

    def connection_lost(self, exc):
        if not self.ended:
            self.disconnected = True
        self._wake()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.release(self.keep and exc is None)

    def pause_writing(self):
        self.write_paused = True

    def resume_writing(self):
        self.write_paused = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def data_received(self, data):
        if self.body_done:
            # Nothing may follow a request before its answer.
            self.extra = True
            return
        if self.body_mode == BODY_PLAIN:
            chunk = data[: self.left]
            self.left -= len(chunk)
            if len(chunk) < len(data):
                self.extra = True
            self._take(chunk)
            if self.left == 0:
                self.body_done = True
        else:
            self._frames(data)
        if self.discarding:
            if self.body_done or self.discarded > _DRAIN_BUDGET:
                self.discarding = False
                self._end()
            return
        if self.buffered > _BODY_BUFFER and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self):
        return False

    def _frames(self, data):
        rbuf = self.rbuf
        rbuf += data
        at = 0
        end = len(rbuf)
        while at < end and not self.body_done:
            if self.frame_left == 0:
                if end - at < _FRAME_HEAD:
                    break
                length = int.from_bytes(rbuf[at : at + _FRAME_HEAD], "little")
                at += _FRAME_HEAD
                if length == 0:
                    self.body_done = True
                    break
                if length > self.wire.max_frame:
                    self.extra = True
                    self.transport.abort()
                    return
                self.frame_left = length
            take = min(self.frame_left, end - at)
            self._take(bytes(rbuf[at : at + take]))
            self.frame_left -= take
            at += take
        if self.body_done and at < end:
            self.extra = True
        del rbuf[:at]

    def _take(self, chunk):
        if not chunk:
            return
        if self.discarding or self.complete:
            self.discarded += len(chunk)
            return
        self.chunks.append(chunk)
        self.buffered += len(chunk)

    def _wake(self):
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # The application's side.

    async def receive(self):
        while True:
            if self.chunks:
                chunks, self.chunks = self.chunks, []
                self.buffered = 0
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                if self.read_paused and not self.disconnected:
                    self.read_paused = False
                    self.transport.resume_reading()
                more = not self.body_done
                self.final_given = not more
                return {"type": "http.request", "body": body, "more_body": more}
            if self.body_done and not self.final_given:
                self.final_given = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if self.complete or self.disconnected:
                return {"type": "http.disconnect"}
            if self.body_mode == BODY_FRAMED and not self.asked:
                self.asked = True
                self.transport.write(self.wire.cont)
            waiter = self.server.loop.create_future()
            self.waiters.append(waiter)
            await waiter

    async def send(self, message):
        kind = message["type"]
        if self.disconnected:
            raise ClientDisconnected("the client has gone away")
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("ASGI: http.response.start sent twice")
            self.started = True
            self.head = self._encode_head(message)
        elif kind == "http.response.body":
            if not self.started:
                raise RuntimeError("ASGI: http.response.body sent before http.response.start")
            if self.complete:
                raise RuntimeError("ASGI: http.response.body sent after the response ended")
            body = message.get("body", b"")
            more = message.get("more_body", False)
            self._write_body(body)
            if not more:
                self._response_ended()
            elif self.write_paused:
                await self._drain()
        elif kind == "http.response.trailers":
            # Not advertised in the scope's extensions: dropped.
            pass
        else:
            raise RuntimeError("ASGI: unexpected message %r on an HTTP connection" % (kind,))

    async def _drain(self):
        if self.disconnected:
            raise ClientDisconnected("the client has gone away")
        self.drained = self.server.loop.create_future()
        await self.drained
        self.drained = None
        if self.disconnected:
            raise ClientDisconnected("the client has gone away")

    def _encode_head(self, message):
        status = int(message["status"])
        if not 100 <= status <= 999:
            raise ValueError("ASGI: invalid status %r" % (status,))
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _reason(status).encode("latin-1"))]
        internal = self.wire.internal_header
        for name, value in message.get("headers", ()):
            name = bytes(name)
            value = bytes(value)
            if not name or not _TOKEN.issuperset(name):
                raise ValueError("ASGI: invalid header name %r" % (name,))
            if b"\r" in value or b"\n" in value or b"\0" in value:
                raise ValueError("ASGI: invalid header value for %r" % (name,))
            if name.lower() == internal:
                continue
            lines.append(b"%s: %s\r\n" % (name, value))
        lines.append(b"\r\n")
        return b"".join(lines)

    def _write_body(self, body):
        parts = []
        if self.head is not None:
            parts.append(self.head)
            self.head = None
        if body and not self.head_request:
            if self.framed:
                view = memoryview(body)
                step = self.wire.max_frame
                for at in range(0, len(body), step):
                    piece = view[at : at + step]
                    parts.append(len(piece).to_bytes(_FRAME_HEAD, "little"))
                    parts.append(piece)
            else:
                parts.append(body)
        if not parts:
            return
        if sum(map(len, parts)) <= _HIGH_WATER:
            self.transport.write(b"".join(parts))
        else:
            for part in parts:
                self.transport.write(part)

    def _response_ended(self):
        self.complete = True
        self._wake()
        if self.body_mode == BODY_FRAMED and self.asked and not self.body_done:
            # Read off what the application left unread, then end.
            self.discarding = True
            self.chunks = []
            if self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
            return
        self._end()

    def _end(self):
        self.ended = True
        body_complete = self.body_done or (self.body_mode == BODY_FRAMED and not self.asked)
        keep = self.framed and self.keep_alive and body_complete and not self.extra
        if self.framed:
            self.transport.write(self.wire.end_keep if keep else self.wire.end_close)
        if keep:
            # The client's next request stays in the socket for the daemon.
            self.transport.pause_reading()
        self.keep = keep
        self.transport.close()

    def error(self, status):
        """Answers `status` (the daemon's error answer) and closes."""
        self.ended = True
        self.complete = True
        self._wake()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.wire.errors[(status, self.framed)])
            self.transport.close()

    def abort(self):
        self.ended = True
        self.complete = True
        self._wake()
        if self.transport is not None:
            self.transport.abort()

    def release(self, keep):
        if not self.released:
            self.released = True
            self.done(keep)

    def _client(self):
        client = self.scope.get("client")
        return client[0] if client else "-"

    def _on_timeout(self):
        if self.complete or self.task is None:
            return
        self.timed_out = True
        self.task.cancel()

    async def run(self, app):
        server = self.server
        self.task = asyncio.current_task()
        timer = None
        if server.request_timeout > 0:
            timer = server.loop.call_later(server.request_timeout, self._on_timeout)
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if not self.timed_out:
                self.abort()
                raise
            self._timed_out()
            return
        except ClientDisconnected:
            self.abort()
            return
        except BaseException as exc:
            where = "before" if not self.started else "after"
            server.log_exception(
                "WSGIRS502: (wsgi:%s) [client %s] Exception occurred processing ASGI "
                "application '%s' (%s the response started)."
                % (server.group, self._client(), self.script, where),
                exc,
            )
            if self.started:
                self.abort()
            else:
                self.error(500)
            return
        finally:
            if timer is not None:
                timer.cancel()
        if self.timed_out:
            self._timed_out()
        elif not self.started:
            server.log(
                "error",
                "WSGIRS503: (wsgi:%s) [client %s] ASGI application '%s' returned without "
                "starting a response" % (server.group, self._client(), self.script),
            )
            self.error(500)
        elif not self.complete:
            server.log(
                "error",
                "WSGIRS503: (wsgi:%s) [client %s] ASGI application '%s' returned before its "
                "response ended; the connection is aborted"
                % (server.group, self._client(), self.script),
            )
            self.abort()

    def _timed_out(self):
        server = self.server
        server.timed_out()
        answered = not self.started
        server.log(
            "error",
            "WSGIRS504: (wsgi:%s) request timeout: '%s' has run longer than %gs; its task was "
            "cancelled%s"
            % (
                server.group,
                self.scope["path"],
                server.request_timeout,
                ", answered 504" if answered else ", the connection is aborted",
            ),
        )
        if answered:
            self.error(504)
        else:
            self.abort()

