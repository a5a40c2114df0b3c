"""The request handler of a connection's own thread: HTTP parsing, faults, pages, control.

Runs in the emulator's process (the tests' process, or ``behave-bstack serve``), in a
thread per connection that the reactor (reactor.py) handed off: a fault is set, or the
request is not a plain API call.  It parses HTTP/1.1 (keep-alive) itself, applies the
faults (faults.py) around ``routes.process_call``, and serves what is not the API:

Control endpoints (no auth):
``GET /_emulator/state[?calls=1]`` recorded state as JSON (builds, tests, hooks, logs,
``calls`` count, or the calls themselves with ``?calls=1``); ``GET /_emulator/faults``;
``POST /_emulator/faults`` faults to set (the JSON of ``Faults.apply``, see faults.py);
``POST /_emulator/reset`` (state and calls; faults too unless ``{"faults": false}``);
``GET /_emulator/health``.

Pages (no auth; a GET of any path outside ``/ext/`` and ``/_emulator/``, see page.py):
``GET /`` the builds received and the calls refused; ``GET /builds/<build_hashed_id>`` one
build's tests grouped by scope, with steps, failures, hook runs and logs.

Control endpoints and pages answer only requests whose ``Host`` names a loopback address
(403 otherwise: a page of another site, DNS-rebound to 127.0.0.1, gets nothing).
"""

from __future__ import annotations

import io
import json
import socket
import struct
import sys
import traceback
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from . import page
from .reactor import PrefixedReader
from .routes import (
    addressed_to_loopback,
    message_of,
    new_call,
    parse_for_record,
    process_call,
    response_bytes,
)
from .state import CallRecord, error_answer

if TYPE_CHECKING:
    from .server import TraServer, _HTTPServer

__all__ = ["Handler"]

_MAX_BODY = 64 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    """One connection, handed off by the reactor (server.py's ``serve_handed_off``)."""

    protocol_version = "HTTP/1.1"
    timeout = None  # no poll() per recv; stop() shuts idle keep-alive connections down
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = self.__dict__.get("pending")
        if pending:  # handed off by the reactor with the bytes it had read
            self.rfile = io.BufferedReader(PrefixedReader(pending, self.connection))
        self.emu: TraServer = self.server.emulator
        self.emu._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.emu._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # no per-request output: it costs CPU and clutters test logs

    # A lean request parser: BaseHTTPRequestHandler.parse_request builds an email.message
    # per request, which is a large share of the CPU cost of a tiny JSON call.
    def handle_one_request(self) -> None:
        try:
            line = self.rfile.readline(65537)
            if not line:
                self.close_connection = True
                return
            parts = line.split()
            if len(line) > 65536 or len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
                self.close_connection = True
                self._send(400, b"bad request line", "text/plain")
                return
            method, target, version = (p.decode("latin-1") for p in parts)
            headers: dict[bytes, bytes] = {}
            for _ in range(200):
                h = self.rfile.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                name, sep, value = h.partition(b":")
                if not sep:
                    self.close_connection = True
                    self._send(400, b"bad header line", "text/plain")
                    return
                headers[name.strip().lower()] = value.strip()
            else:
                self.close_connection = True
                self._send(431, b"too many headers", "text/plain")
                return
            conn = headers.get(b"connection", b"").lower()
            self.close_connection = conn == b"close" or (
                version == "HTTP/1.0" and conn != b"keep-alive"
            )
            self.command, self.path, self.request_version = method, target, version
            path, _, query = target.partition("?")
            if path.startswith("/_emulator/") or (method == "GET" and not path.startswith("/ext/")):
                if not addressed_to_loopback(headers.get(b"host")):
                    # a page some website made a browser ask for (DNS rebinding): no
                    if self._read_body(headers) is not None:
                        self.close_connection = True
                        self._send(403, b"loopback Host only", "text/plain")
                elif path.startswith("/_emulator/"):
                    self._control(method, path, query, headers)
                else:
                    self._page(path, headers)  # the pages for a browser: no API route is a GET
            else:
                self._api(method, path, headers)
        except (TimeoutError, ConnectionError):
            self.close_connection = True

    def _read_body(self, headers: dict[bytes, bytes]) -> bytes | None:
        """The request body (exactly Content-Length bytes), or None after an error answer."""
        if b"transfer-encoding" in headers:
            self.close_connection = True
            self._send(411, b"Content-Length required", "text/plain")
            return None
        length = headers.get(b"content-length")
        if length is None:
            return b""
        try:
            n = int(length)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._send(400, b"bad Content-Length", "text/plain")
            return None
        if n > _MAX_BODY:
            self.close_connection = True
            self._send(413, b"body too large", "text/plain")
            return None
        if headers.get(b"expect", b"").lower() == b"100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            self.close_connection = True  # the client went away mid-body
            return None
        return data

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        # one write per response: a separate header write invites Nagle/delayed-ACK stalls
        self.wfile.write(response_bytes(status, body, content_type, headers, self.close_connection))

    def _drop(self, mode: str | None) -> None:
        self.close_connection = True
        if mode == "reset":
            # SO_LINGER 0 + close: the kernel answers with RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        elif mode == "partial":
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b'Content-Length: 64\r\n\r\n{"success": tr'
            )

    def _api(self, method: str, path: str, headers: dict[bytes, bytes]) -> None:
        route, call = new_call(method, path)
        try:
            self._serve_api(route, call, headers)
        finally:
            if self.emu.on_call is not None:
                self.emu._report(call)

    def _serve_api(self, route: Any, call: CallRecord, headers: dict[bytes, bytes]) -> None:
        emu = self.emu
        state = emu.state
        faults = emu.faults
        op, path = call.op, call.path

        action = None
        if faults.active:
            latency, action = faults.before(op, path)
            if latency:
                emu._sleep(latency)
            if action is not None and action.drop == "reset":
                call.fault = action.name
                state.add_call(call)
                self._drop("reset")
                return
        raw = self._read_body(headers)
        if raw is None:
            return
        if action is None and faults.active:
            action = faults.on_body(op, path, raw)
        if action is not None:
            call.fault, call.body = action.name, parse_for_record(raw)
            if action.drop:
                state.add_call(call)
                self._drop(action.drop)
            else:
                call.status = action.status
                call.error = message_of(action.body) if (action.status or 500) >= 400 else None
                state.add_call(call)
                self._send(action.status or 500, action.body, action.content_type, action.headers)
            return

        status, out, ctype, extra = process_call(emu, route, call.method, headers, raw, call)
        if faults.active:
            delay, action = faults.after(op, path)
            if delay:
                emu._sleep(delay)
            if action is not None:
                call.fault = action.name
                if action.drop:
                    call.status = None
                    self._drop(action.drop)
                    return
                status, out, ctype, extra = (
                    action.status or 200,
                    action.body,
                    action.content_type,
                    (),
                )
        call.status = status
        self._send(status, out, ctype, extra)

    def _page(self, path: str, headers: dict[bytes, bytes]) -> None:
        if self._read_body(headers) is None:
            return
        try:
            status, body = page.render(self.emu.state, path, self.emu.url)
        except Exception:  # a page the emulator cannot draw must not hide the others
            traceback.print_exc(file=sys.stderr)
            status, body = 500, b"the emulator could not draw this page (see its stderr)"
            self._send(status, body, "text/plain; charset=utf-8")
            return
        self._send(status, body, page.CONTENT_TYPE, page.HEADERS)

    def _control(self, method: str, path: str, query: str, headers: dict[bytes, bytes]) -> None:
        raw = self._read_body(headers)
        if raw is None:
            return
        emu = self.emu
        try:
            if method == "GET" and path == "/_emulator/state":
                out: Any = emu.state.to_json(with_calls="calls=1" in query)
                out["faults"] = emu.faults.snapshot()
            elif method == "GET" and path == "/_emulator/faults":
                out = emu.faults.snapshot()
            elif method == "GET" and path == "/_emulator/health":
                out = {"success": True}
            elif method == "POST" and path == "/_emulator/faults":
                emu.faults.apply(json.loads(raw or b"{}"))
                out = {"success": True, "faults": emu.faults.snapshot()}
            elif method == "POST" and path == "/_emulator/reset":
                spec = json.loads(raw or b"{}")
                emu.reset(faults=bool(spec.get("faults", True)) if isinstance(spec, dict) else True)
                out = {"success": True}
            else:
                self._send(404, error_answer(404, f"no control endpoint {method} {path}")[1])
                return
        except (ValueError, TypeError) as exc:
            self._send(400, error_answer(400, f"bad control request: {exc}")[1])
            return
        self._send(200, json.dumps(out, default=str).encode())
