"""The ASGI `websocket` scope of mod_wsgi_rs (src/daemon/websocket/mod.rs).

Runs one WebSocket connection on the daemon process's event loop: the
application's `receive` and `send`, over a `mod_wsgi.WebSocket` channel
(src/daemon/websocket/channel.rs) that frames messages without blocking. Waiting
is done with the loop's add_reader/add_writer on the connection, so an open
WebSocket costs a coroutine, not a thread.
"""

import asyncio

# Where the connection is in the ASGI state machine.
CONNECTING, OPEN, CLOSED = range(3)

# How long, after the server's close frame, the client is given to answer
# with its own before the connection is dropped (RFC 6455 7.1.1).
CLOSE_GRACE = 5.0


def websocket_scope(http_scope, subprotocols):
    """The `websocket` scope of a request whose HTTP scope is given."""
    scope = dict(http_scope)
    scope["type"] = "websocket"
    scope["asgi"] = {"version": "3.0", "spec_version": "2.4"}
    scope["scheme"] = "wss" if http_scope.get("scheme") == "https" else "ws"
    scope.pop("method", None)
    scope["subprotocols"] = list(subprotocols)
    return scope


class Connection:
    """One WebSocket's receive/send, as the ASGI spec defines them."""

    def __init__(self, channel):
        self.channel = channel
        self.fd = channel.fileno()
        self.loop = asyncio.get_running_loop()
        self.state = CONNECTING
        self.connect_delivered = False
        self.accepted = False
        # (code, reason) once the client has closed or gone.
        self.disconnect = None

    async def _ready(self, add, remove):
        """Waits until the socket is ready (add: the loop's add_reader or
        add_writer)."""
        ready = self.loop.create_future()

        def wake():
            if not ready.done():
                ready.set_result(None)

        add(self.fd, wake)
        try:
            await ready
        finally:
            remove(self.fd)

    async def flush(self):
        """Writes everything queued."""
        while not self.channel.flush():
            await self._ready(self.loop.add_writer, self.loop.remove_writer)

    async def _next(self):
        """The client's next message as (kind, data), waiting for it."""
        while True:
            message = self.channel.read()
            if message is not None:
                return message
            # Pongs to the client's pings go out before the wait.
            await self.flush()
            await self._ready(self.loop.add_reader, self.loop.remove_reader)

    async def receive(self):
        if not self.connect_delivered:
            self.connect_delivered = True
            return {"type": "websocket.connect"}
        if self.disconnect is None:
            kind, data = await self._next()
            if kind == "text":
                return {"type": "websocket.receive", "text": data, "bytes": None}
            if kind == "bytes":
                return {"type": "websocket.receive", "bytes": data, "text": None}
            self.disconnect = data
            try:
                # tungstenite queued the answer to the client's close frame.
                await self.flush()
            except OSError:
                pass
        code, reason = self.disconnect
        return {"type": "websocket.disconnect", "code": code, "reason": reason}

    async def send(self, message):
        kind = message["type"]
        if self.state == CONNECTING:
            if kind == "websocket.accept":
                headers = [(bytes(k), bytes(v)) for k, v in message.get("headers") or ()]
                self.channel.accept(message.get("subprotocol"), headers)
                self.state = OPEN
                self.accepted = True
            elif kind == "websocket.close":
                # Closing before accepting refuses the handshake (ASGI: 403).
                self.channel.refuse(403, "Forbidden")
                self.state = CLOSED
            else:
                raise RuntimeError(
                    f"ASGI websocket: expected 'websocket.accept' or 'websocket.close', got {kind!r}"
                )
            await self.flush()
            return
        if self.state == CLOSED or self.disconnect is not None:
            raise OSError(f"ASGI websocket: {kind!r} sent after the WebSocket closed")
        if kind == "websocket.send":
            text, data = message.get("text"), message.get("bytes")
            if text is not None:
                self.channel.send_text(text)
            elif data is not None:
                self.channel.send_bytes(bytes(data))
            else:
                raise ValueError("ASGI websocket.send: one of 'text' or 'bytes' is required")
        elif kind == "websocket.close":
            self.channel.close(message.get("code") or 1000, message.get("reason") or "")
            self.state = CLOSED
        else:
            raise RuntimeError(f"ASGI websocket: unexpected message {kind!r}")
        await self.flush()

    async def finish(self, failed):
        """After the application returned (or raised): a handshake it never
        answered is refused (403, or 500 when it raised); an open socket is
        closed (1000, or 1011 when it raised); a close it sent is given
        CLOSE_GRACE for the client's answer."""
        try:
            if self.state == CONNECTING:
                self.channel.refuse(500 if failed else 403, "Refused")
                self.state = CLOSED
                await self.flush()
                return
            if self.state == OPEN and self.disconnect is None:
                self.channel.close(1011 if failed else 1000, "")
                self.state = CLOSED
            await self.flush()
            if self.accepted and self.disconnect is None:
                await asyncio.wait_for(self._closing(), CLOSE_GRACE)
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            self.channel.shutdown()

    async def _closing(self):
        """Reads until the client's close frame (or the end)."""
        while True:
            kind, data = await self._next()
            if kind == "close":
                self.disconnect = data
                await self.flush()
                return


async def serve(app, http_scope, subprotocols, channel, state):
    """Runs `app` for one WebSocket; an exception it raises is raised again
    after the client got its answer. `state` is the lifespan state (None:
    the startup failed, and the handshake is answered 500)."""
    connection = Connection(channel)
    if state is None:
        await connection.finish(failed=True)
        return
    scope = websocket_scope(http_scope, subprotocols)
    scope["state"] = state
    try:
        await app(scope, connection.receive, connection.send)
    except BaseException:
        await connection.finish(failed=True)
        raise
    await connection.finish(failed=False)
