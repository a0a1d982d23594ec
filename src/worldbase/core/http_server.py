"""uvicorn's HTTP/1.1 protocols with a cap on request header bytes (431 past it).

Neither parser bounds a request head by default: httptools buffers a header value of any
size (a 64 MB header took 6 s to parse), and h11 allows 16 KiB with a plain-text 400.
Counting happens as bytes arrive, so an oversized head is refused after at most one read
past the cap, before the app sees anything. `worldbase serve` passes `HTTP_PROTOCOL` as
uvicorn's `http=` and the cap as `h11_max_incomplete_event_size`, which both classes read.
"""

from __future__ import annotations

import json
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol

from worldbase.core.errors import error_body

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
_STATUS = 431


def _limit(config: Config) -> int:
    return config.h11_max_incomplete_event_size or DEFAULT_MAX_HEADER_BYTES


def _431_body(limit: int) -> bytes:
    body = error_body(
        _STATUS,
        f"Request headers too large: at most {limit} bytes (WORLDBASE_MAX_HEADER_BYTES)",
        {"limit_bytes": limit, "setting": "WORLDBASE_MAX_HEADER_BYTES"},
    )
    return json.dumps(body).encode()


def _431_response(limit: int) -> bytes:
    body = _431_body(limit)
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


class _CappedH11Connection(h11.Connection):
    """h11 refuses a head still incomplete past the cap (hinting 431); a head that arrives
    whole in one read is measured here. Either way the protocol learns it was the size."""

    head_too_large = False

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.head_too_large = exc.error_status_hint == _STATUS
            raise
        if isinstance(event, h11.Request):
            size = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
            if size > self._max_incomplete_event_size:
                self.head_too_large = True
                raise h11.RemoteProtocolError("Request head too large", _STATUS)
        return event


class CappedH11Protocol(H11Protocol):
    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.conn = _CappedH11Connection(h11.SERVER, max_incomplete_event_size=_limit(config))

    def send_400_response(self, msg: str) -> None:
        conn = self.conn
        if isinstance(conn, _CappedH11Connection) and conn.head_too_large:
            self.transport.write(_431_response(_limit(self.config)))
            self.transport.close()
            return
        super().send_400_response(msg)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
    HTTP_PROTOCOL: type[Any] = CappedH11Protocol
else:

    class CappedHttpToolsProtocol(HttpToolsProtocol):
        """Counts head bytes per request: the bytes fed while the head is incomplete (the
        parser buffers a header value until it ends), and the URL and headers it yields."""

        def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
            super().__init__(config, *args, **kwargs)
            self._max_head = _limit(config)
            self._in_head = True  # until on_headers_complete; again after each message
            self._head_fed = 0
            self._head_parsed = 0
            self._head_began_here = False
            self._refused = False

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            self._head_began_here = False
            super().data_received(data)
            if self._refused or self.transport.is_closing():
                return
            # A read in which a message ended holds that body's tail too: only reads made
            # entirely in a head count (a head may so pass the cap by one read, at most
            # 256 KiB, before the refusal; on_header counts a complete head exactly).
            if self._in_head and not self._head_began_here:
                self._head_fed += len(data)
                if self._head_fed > self._max_head:
                    self._refuse()

        def on_message_begin(self) -> None:
            self._in_head = True
            self._head_parsed = 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)  # ": " and CRLF
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_fed = 0
            if self._head_parsed > self._max_head:
                # A whole oversized head can arrive in one read; refuse it before the app.
                self._refuse()
                raise _HeadTooLarge
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True
            self._head_began_here = True
            self._head_fed = 0

        def _count(self, size: int) -> None:
            self._head_parsed += size

        def _refuse(self) -> None:
            if not self._refused:
                self._refused = True
                self.transport.write(_431_response(self._max_head))
                self.transport.close()

        def send_400_response(self, msg: str) -> None:
            if self._refused:  # the parser reports our own refusal as a callback error
                return
            super().send_400_response(msg)

    class _HeadTooLarge(Exception):
        """Stops the parser inside a callback; the 431 has been sent already."""

    HTTP_PROTOCOL = CappedHttpToolsProtocol


__all__ = ["DEFAULT_MAX_HEADER_BYTES", "HTTP_PROTOCOL", "CappedH11Protocol"]
