"""The HTTP request cycle of the ASGI server of a mod_wsgi_rs daemon process
(loaded by src/asgi/mod.rs as the module _wsgi_rs_asgi_connection, once per
interpreter, before server.py, which imports it).

A `Connection` is one request on the loop's own duplicate of a daemon
connection, as an asyncio protocol: the application's `receive()` and
`send()`, the request body read off the socket (in frames after the
go-ahead, see src/daemon/protocol.rs for the wire format) and the response
head, body frames and end marker written to it, with flow control both
ways; `request-timeout`; the answers when the application fails. When the
response has ended it closes its transport and calls `done(keep)`.
"""

import asyncio
import http

_FRAME_HEAD = 4
_HIGH_WATER = 64 * 1024
# Request body bytes held for the application before reading pauses.
_BODY_BUFFER = 256 * 1024
# Body bytes an application left unread that are read off (and dropped)
# so the connection stays usable, as the WSGI side does.
_DRAIN_BUDGET = 4 << 20
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

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
