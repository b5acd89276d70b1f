"""A lean HTTP/1.1 transport for the SDK's httpx2 client, for plain-HTTP endpoints (vLLM, Ollama).

At hundreds of teacher calls per second the client is CPU-bound, and almost all of that CPU is the
generic HTTP stack (connection-pool bookkeeping, anyio wrappers): measured, ArcticCodex's own code is
4 % of it.  A local vLLM server behind a tunnel needs none of that generality: this transport keeps
idle keep-alive connections in a stack, speaks HTTP/1.1 with ``h11`` over asyncio streams, and maps
failures onto httpx2's exceptions, so the ``openai`` SDK above it behaves exactly as with its own
transport (timeouts become ``APITimeoutError``, refused or dropped connections
``APIConnectionError``).  HTTPS endpoints (DeepSeek, OpenAI) keep httpx2's transport, with its TLS,
proxy and HTTP/2 support.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import h11
import httpx2 as httpx

_READ_SIZE = 65536


class _StaleConnectionError(ConnectionResetError):
    """The server closed the connection before sending any byte of a response."""


class _Connection:
    __slots__ = ("h11", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        self.writer.close()


class LeanAsyncTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 for ``http://`` URLs only (see the module docstring)."""

    def __init__(self, *, max_idle: int = 256, connect_timeout: float = 10.0) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = defaultdict(list)
        self._max_idle = max_idle
        self._connect_timeout = connect_timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"LeanAsyncTransport serves http:// only, not {url.scheme}://")
        key = (url.host, url.port or 80)
        timeout = request.extensions.get("timeout", {})
        read_timeout = timeout.get("read") or 60.0
        body = request.content if request.stream is not None else b""
        connection, reused = await self._connection(key, request)
        try:
            try:
                status, headers, content = await asyncio.wait_for(
                    self._exchange(connection, request, body), timeout=read_timeout
                )
            except _StaleConnectionError:
                if not reused:  # a fresh connection dropped: that is the server's answer, not staleness
                    raise
                # a kept-alive connection the server had just closed: nothing was answered, so the
                # request is sent once more on a fresh connection (not a retry of a failed request)
                connection.close()
                connection, _ = await self._connection(key, request, fresh=True)
                status, headers, content = await asyncio.wait_for(
                    self._exchange(connection, request, body), timeout=read_timeout
                )
        except TimeoutError:
            connection.close()
            raise httpx.ReadTimeout(f"no response within {read_timeout} s", request=request) from None
        except (OSError, h11.ProtocolError, asyncio.IncompleteReadError) as exc:
            connection.close()
            raise httpx.RemoteProtocolError(f"connection failed: {exc!r}", request=request) from exc
        except BaseException:  # cancelled mid-exchange: the connection's state is unknown, never reuse it
            connection.close()
            raise
        if connection.h11.our_state is h11.DONE and connection.h11.their_state is h11.DONE:
            connection.h11.start_next_cycle()
            idle = self._idle[key]
            if len(idle) < self._max_idle:
                idle.append(connection)
            else:
                connection.close()
        else:
            connection.close()
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _connection(
        self, key: tuple[str, int], request: httpx.Request, *, fresh: bool = False
    ) -> tuple[_Connection, bool]:
        """A connection and whether it was reused from the idle stack."""
        idle = self._idle[key]
        while idle and not fresh:
            connection = idle.pop()
            if not connection.reader.at_eof() and not connection.writer.is_closing():
                return connection, True
            connection.close()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*key), timeout=self._connect_timeout)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"could not connect to {key[0]}:{key[1]}", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(f"could not connect to {key[0]}:{key[1]}: {exc}", request=request) from exc
        return _Connection(reader, writer), False

    async def _exchange(
        self, connection: _Connection, request: httpx.Request, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        h11_connection = connection.h11
        headers = [(name, value) for name, value in request.headers.raw if name.lower() != b"transfer-encoding"]
        if body and not any(name.lower() == b"content-length" for name, _ in headers):
            headers.append((b"content-length", str(len(body)).encode()))
        outgoing = h11_connection.send(h11.Request(method=request.method, target=request.url.raw_path, headers=headers))
        if body:
            outgoing += h11_connection.send(h11.Data(data=body))
        outgoing += h11_connection.send(h11.EndOfMessage())
        connection.writer.write(outgoing)
        status, response_headers, chunks = 0, [], []
        while True:
            event = h11_connection.next_event()
            if event is h11.NEED_DATA:
                data = await connection.reader.read(_READ_SIZE)
                if not data and status == 0:
                    raise _StaleConnectionError("the server closed the connection before answering")
                h11_connection.receive_data(data)  # b"" tells h11 the server closed: may end the body
            elif isinstance(event, h11.Response):
                status, response_headers = event.status_code, list(event.headers)
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return status, response_headers, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("the server closed the connection")

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
