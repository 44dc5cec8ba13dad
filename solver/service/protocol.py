"""The HTTP/1.1 connection: uvicorn's httptools protocol with the limits SERVICE.md asks of it.

    uvicorn.Config(app, http=protocol(max_head=64 << 10, read_timeout=20.0), ws="none")

uvicorn sets no limit on a request's headers (200 headers of 1 MB each took the server from 134 to
322 MB), no deadline on a request that arrives slowly (a trickled head or body held its socket for
good), and answers what its parser cannot read in plain text.  Here:

- the request line and headers together are at most `max_head` bytes: 431, counted as the bytes
  arrive, so a head over the limit is refused before it is held whole;
- a request's head arrives within `read_timeout` seconds of its first byte, else 408; its body is
  timed by the application (app.py: 408), and a body the application answered without reading (a
  token refused, say) has as long again to arrive before the connection is closed;
- a connection that sends nothing is closed after uvicorn's keep-alive time, as an idle one is;
- a request the parser cannot read is answered in JSON: an OperationOutcome when its path, already
  read, is under /fhir/, else `{"error": ...}`; unless an answer to an earlier request on the
  connection is still owed (pipelined): that one goes out alone, then the connection closes (uvicorn
  wrote its 400 first, which the client takes for the earlier request's answer);
- a request that asks to upgrade (`Upgrade: h2c`, as curl --http2 sends it) is answered as HTTP/1.1,
  its body read (httptools dropped it).

Every answer here is in JSON; what JSON cannot help: bytes that are not HTTP/1 at all (an HTTP/2
connection preface, a TLS ClientHello on the plain port) get an HTTP/1.1 answer their client cannot
read, a request whose connection closes before its head is complete gets no answer (nobody is left
to read one), and neither does the unreadable pipelined request above.
"""

from __future__ import annotations

import asyncio
import http
from typing import Optional

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from solver.service import work

MAX_HEAD = 64 << 10
READ_TIMEOUT = 20.0


class _Refused(Exception):
    """Raised in a parser callback: answer `status` with these words."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def protocol(max_head: int = MAX_HEAD, read_timeout: float = READ_TIMEOUT) -> type:
    """The protocol class uvicorn builds each connection with, holding these limits."""
    return type("Protocol", (Protocol,), {"max_head": max_head, "read_timeout": read_timeout})


class Protocol(HttpToolsProtocol):
    max_head = MAX_HEAD
    read_timeout = READ_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_head = True            # between requests, or reading one's line and headers
        self._head = 0                  # bytes received while in the head (its exact size, or just over)
        self._message_done = False
        self._upgrade_body = 0          # body bytes still to come of a request that asked to upgrade
        self._head_timer: Optional[asyncio.TimerHandle] = None
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._upgrade_body:
            data = self._take_upgrade_body(data)
            if not data:
                return
        if self._in_head:
            # everything in a piece that arrives between requests or within a head is head until
            # the headers end (a body's tail and a pipelined head never share a counted piece)
            self._head += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as up:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            elif len(data) > up.args[0]:
                # not upgraded: what follows the head is this request's body and the next requests
                self.data_received(data[up.args[0]:])
        except httptools.HttpParserError as err:
            if isinstance(err.__context__, _Refused):
                self._refuse(err.__context__.status, str(err.__context__))
            else:
                self._refuse(400, _unreadable(err, data))
        else:
            if self._in_head and self._head > self.max_head:
                self._refuse(431, self._too_large())

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, f"the request could not be read: {msg}")

    # ---------------------------------------------------------------- parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._message_done = False
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.read_timeout, self._head_late)

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_head:
            raise _Refused(431, self._too_large())
        if self.parser.should_upgrade() and not self._should_upgrade():
            # llhttp (through httptools) ends a request that asks to upgrade with its head, and takes
            # what follows for the other protocol's: its body would be lost (curl --http2 sends
            # `Upgrade: h2c` with a POST's body).  Nothing here upgrades (RFC 9110 7.8 lets a server
            # ignore the header), so the body is read here, by its Content-Length.
            fields = dict(self.headers)
            if b"transfer-encoding" in fields:
                raise _Refused(400, "a chunked body with an Upgrade header cannot be read here: "
                                    "send the request without Upgrade (HTTP/1.1)")
            self._upgrade_body = int(fields.get(b"content-length", b"0"))
        self._in_head, self._head = False, 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self._upgrade_body:
            return                      # its body is still to come (data_received reads it)
        self._message_done, self._in_head = True, True
        super().on_message_complete()

    def _take_upgrade_body(self, data: bytes) -> bytes:
        """Give the request as much of `data` as is its body (as `on_body` does), and end it when
        whole; what is left is the next request's."""
        body, rest = data[:self._upgrade_body], data[self._upgrade_body:]
        self._upgrade_body -= len(body)
        if not self.cycle.response_complete:
            self.cycle.body += body
            if len(self.cycle.body) > HIGH_WATER_LIMIT:
                self.flow.pause_reading()
            self.cycle.message_event.set()
        if not self._upgrade_body:
            self.on_message_complete()
        return rest

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._message_done and not self.transport.is_closing():
            # answered without its body being read: it has `read_timeout` more seconds to arrive
            self.loop.call_later(self.read_timeout, self._body_late, self.cycle)

    # ---------------------------------------------------------------- refusals
    def _too_large(self) -> str:
        return f"the request line and headers are over the limit of {self.max_head} bytes"

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, f"the request's headers did not arrive within {self.read_timeout:g} s")

    def _body_late(self, cycle) -> None:
        if self.cycle is cycle and not self._message_done and not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` in JSON (by the path, when it has been read) and close the connection."""
        self._cancel_head_timer()
        if self.transport.is_closing():
            return
        self.logger.warning("%s", message)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and (self._in_head or cycle.response_started):
            # an answer is owed first (to a request pipelined before this one) or is on its way
            # (to this one): it goes out alone, then the connection closes
            cycle.keep_alive = False
            return
        if cycle is not None and not self._in_head and cycle.response_complete:
            self.transport.close()                  # this request was answered before its body was read
            return
        path = getattr(self, "url", b"").split(b"?", 1)[0]
        a = work.error_body("fhir" if path.startswith(b"/fhir/") else "json", status,
                            {408: "timeout", 431: "too-long"}.get(status, "invalid"), message)
        head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(f"content-type: {a.media}\r\ncontent-length: {len(a.body)}\r\nconnection: close\r\n\r\n".encode())
        self.transport.write(b"".join(head) + a.body)
        self.transport.close()


def _unreadable(err: Exception, data: bytes) -> str:
    reason = str(err.__context__ or err) or type(err).__name__
    if reason == "Pause on PRI/Upgrade":
        return "HTTP/2 is not served here (no h2c upgrade either): send HTTP/1.1"
    if isinstance(err, httptools.HttpParserInvalidMethodError) and data[:1] == b"\x16":
        return "the request is not HTTP/1.1 (TLS? this port serves plain HTTP)"
    return f"the request could not be read as HTTP/1.1: {reason}"
