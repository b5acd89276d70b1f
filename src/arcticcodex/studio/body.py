"""The body of a state-changing request: read up to a limit, searched for the form token, replayed.

Starlette's ``request.form()`` reads the whole body before a handler can look at it, however large
it is.  The Studio reads it itself first, from the ASGI ``receive`` stream, and stops at the limit:
a declared ``Content-Length`` above it is refused before a byte is read, and a body that grows past
it (chunked, or lying about its length) is refused as soon as it does, while the client is still
sending.  The body is kept in memory (the limit bounds it: 20 MB for an upload, 1 MB for any other
form) and handed to the application unchanged, so handlers parse forms the usual way.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import Message, Receive

_MAX_TOKEN_BYTES = 256  # a form token is 43 characters; a longer field is not one


class BodyTooLargeError(Exception):
    """The body passed the limit; ``received`` bytes had been read when reading stopped."""

    def __init__(self, received: int) -> None:
        super().__init__(f"request body over the limit after {received} bytes")
        self.received = received


class ClientGoneError(Exception):
    """The client disconnected before sending the whole body."""


class RequestBody:
    """A request's body, read up to ``limit`` bytes."""

    def __init__(self, data: bytes, receive: Receive) -> None:
        self.data = data
        self._receive = receive

    @classmethod
    async def read(cls, receive: Receive, limit: int) -> RequestBody:
        """Read the body from ``receive``; raise :class:`BodyTooLargeError` as soon as it passes ``limit``."""
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGoneError
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise BodyTooLargeError(received)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return cls(b"".join(chunks), receive)

    def replay(self) -> Receive:
        """A ``receive`` for the application: the body in one message, then the client's own stream
        (which only says when it disconnects)."""
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": self.data, "more_body": False}
            return await self._receive()

        return receive

    def form_field(self, content_type: str, name: str) -> str | None:
        """The first value of the field ``name`` in a urlencoded or multipart form, else None.

        Only what is needed to find one short field is parsed: file contents are skipped, not kept.
        """
        kind, options = parse_options_header(content_type)
        if kind == b"application/x-www-form-urlencoded":
            text = self.data.decode("latin-1")
            pairs = parse_qsl(text, keep_blank_values=True, encoding="latin-1", max_num_fields=1000)
            return next((value for key, value in pairs if key == name), None)
        if kind == b"multipart/form-data" and options.get(b"boundary"):
            try:
                return _multipart_field(self.data, options[b"boundary"], name)
            except (MultipartParseError, ValueError):
                return None
        return None


class _FieldFinder:
    """python-multipart callbacks that keep the value of one plain (non-file) field, and nothing else."""

    def __init__(self, name: str) -> None:
        self.name = name.encode()
        self.value: bytes | None = None
        self._wanted = False
        self._data = bytearray()
        self._header_name = bytearray()
        self._header_value = bytearray()

    def on_part_begin(self) -> None:
        self._wanted = False
        self._data.clear()

    def on_header_field(self, chunk: bytes, start: int, end: int) -> None:
        self._header_name.extend(chunk[start:end])

    def on_header_value(self, chunk: bytes, start: int, end: int) -> None:
        self._header_value.extend(chunk[start:end])

    def on_header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            _, options = parse_options_header(bytes(self._header_value))
            self._wanted = options.get(b"name") == self.name and b"filename" not in options
        self._header_name.clear()
        self._header_value.clear()

    def on_part_data(self, chunk: bytes, start: int, end: int) -> None:
        if self._wanted and len(self._data) <= _MAX_TOKEN_BYTES:
            self._data.extend(chunk[start : min(end, start + _MAX_TOKEN_BYTES + 1)])

    def on_part_end(self) -> None:
        if self._wanted and self.value is None:
            self.value = bytes(self._data)


def _multipart_field(data: bytes, boundary: bytes, name: str) -> str | None:
    finder = _FieldFinder(name)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": finder.on_part_begin,
            "on_header_field": finder.on_header_field,
            "on_header_value": finder.on_header_value,
            "on_header_end": finder.on_header_end,
            "on_part_data": finder.on_part_data,
            "on_part_end": finder.on_part_end,
        },
    )
    parser.write(data)
    parser.finalize()
    if finder.value is None or len(finder.value) > _MAX_TOKEN_BYTES:
        return None
    return finder.value.decode("utf-8", "replace")
