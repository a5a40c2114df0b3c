"""The TRA emulator's server: a strict stand-in for the TRA ingestion API (tra-api.md).

Usage::

    with TraServer(username="bs_user", access_key="bs_key") as srv:
        ...  # point the client at srv.url
        assert srv.state.tests_in(build_id)[0].finish_count == 1

Runs in the tests' process, or in ``behave-bstack serve`` / ``python -m
behave_bstack.emulator``.  This module is the serving glue: ``TraServer`` binds a loopback
address (a thread accepts connections), hands each connection to the reactor (reactor.py:
one thread answers plain API calls on kept-alive connections), which hands it to a thread
of its own running handler.py's request handler when a fault is set or the request is not
a plain API call.  What a call means and its answer: routes.py; what was recorded:
``srv.state`` (state.py); misbehaviour on demand: ``srv.faults`` (faults.py); the pages:
page.py.

Every API call, answered or not, is kept in ``srv.calls``.  ``srv.on_call``, when set, is
given each API call's record once it is answered or dropped (call_line.py formats the line
``behave-bstack serve`` prints); it is None by default, so tests and the benchmark pay
nothing.
"""

from __future__ import annotations

import base64
import functools
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any

from .faults import Faults
from .handler import Handler
from .reactor import Reactor
from .routes import is_loopback, new_call, process_call, response_bytes
from .state import CallRecord, EmulatorState

__all__ = ["TraServer", "is_loopback"]


class _HTTPServer(ThreadingHTTPServer):
    """The listening socket: its thread accepts connections and gives them to the reactor."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    emulator: TraServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse-DNS lookup (getfqdn): slow and pointless here
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):  # client disconnects are normal; bugs are not
            traceback.print_exc(file=sys.stderr)

    def process_request(self, request: Any, client_address: Any) -> None:
        # No thread per connection: the reactor serves it (and hands it to a thread when
        # it needs the handler, see reactor.py).
        reactor = self.emulator._reactor
        if reactor is None:
            self.shutdown_request(request)
        else:
            reactor.adopt(
                request, functools.partial(self.serve_handed_off, request, client_address)
            )

    def serve_handed_off(self, conn: socket.socket, client_address: Any, pending: bytes) -> None:
        """A connection's own thread, from the reactor: the request handler, as socketserver
        runs it, starting with the bytes the reactor had read."""
        try:
            handler = Handler.__new__(Handler)
            handler.pending = pending
            handler.__init__(conn, client_address, self)  # runs setup, handle, finish
        except Exception:
            self.handle_error(conn, client_address)
        finally:
            self.shutdown_request(conn)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class TraServer:
    """The emulator: an HTTP server (reactor.py serves plain calls, a thread per connection
    the rest) plus its recorded ``state`` and ``faults``."""

    def __init__(
        self,
        username: str = "bs_user",
        access_key: str = "bs_key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"the TRA emulator binds loopback hosts only, not {host!r}")
        self.username = username
        self.access_key = access_key
        self.host = host
        self.port = port
        self.state = EmulatorState()
        self.faults = Faults(self._set_listening)
        token = base64.b64encode(f"{username}:{access_key}".encode()).decode()
        self._expected_auth = f"Basic {token}".encode()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._listen_lock = threading.Lock()
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._reactor: Reactor | None = None
        # Called with each API call's record once it is answered (or dropped), from the
        # thread that served it; None (the default) costs nothing.  `serve` prints a line.
        self.on_call: Callable[[CallRecord], None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def calls(self) -> list[CallRecord]:
        return self.state.calls

    def start(self) -> TraServer:
        self._stopping.clear()
        if self._reactor is None:
            self._reactor = Reactor(self)
        self._listen()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.faults.clear()
        self._unlisten()
        reactor, self._reactor = self._reactor, None
        if reactor is not None:
            reactor.stop()  # closes the connections it serves
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:  # wake handler threads blocked on idle keep-alive connections
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def reset(self, faults: bool = True) -> None:
        """Forget all recorded state and calls (and faults, unless ``faults=False``)."""
        self.state.clear()
        if faults:
            self.faults.clear()

    def __enter__(self) -> TraServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- internals
    def _answer_plain(
        self, method: str, path: str, headers: dict[bytes, bytes], raw: bytes
    ) -> bytes:
        """The reactor's calls: an API call with no fault set, answered in full."""
        route, call = new_call(method, path)
        status, out, ctype, extra = process_call(self, route, method, headers, raw, call)
        call.status = status
        if self.on_call is not None:
            self._report(call)
        return response_bytes(status, out, ctype, extra)

    def _report(self, call: CallRecord) -> None:
        """Tell ``on_call`` about an answered (or dropped) API call; its errors stay here."""
        try:
            self.on_call(call)  # type: ignore[misc]
        except Exception:
            traceback.print_exc(file=sys.stderr)

    def _authorized(self, header: bytes | None) -> bool:
        if header is None:
            return False
        if header == self._expected_auth:
            return True
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user, _, key = base64.b64decode(token.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.username and key == self.access_key

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _listen(self) -> None:
        with self._listen_lock:
            if self._httpd is not None:
                return
            cls = _HTTPServer6 if ":" in self.host else _HTTPServer
            httpd = cls((self.host, self.port), Handler)
            httpd.emulator = self
            self.port = httpd.server_address[1]  # keep the port across downtime "refuse"
            self._httpd = httpd
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"tra-emulator-{self.port}",
                daemon=True,
            )
            self._thread.start()

    def _unlisten(self) -> None:
        with self._listen_lock:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def _set_listening(self, on: bool) -> None:
        if on:
            if not self._stopping.is_set():
                self._listen()
        else:
            self._unlisten()
