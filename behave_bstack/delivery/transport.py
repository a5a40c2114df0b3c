"""The one place that speaks HTTP.

Built on the standard library's http.client rather than requests: delivery makes two or
more calls per scenario, and requests costs about five times the CPU per call measured
here (design.md §2), which decides whether reporting slows a fast suite.  Each thread
keeps its own kept-alive connection.

Errors come out as TransportError with a message that names the host, the proxy and the
setting to change, never the credentials.
"""

from __future__ import annotations

import base64
import http.client
import json
import selectors
import socket
import ssl
import threading
import time
import urllib.parse

from ..base.loopback import is_loopback


def _make_body_encoder():
    """A body as compact UTF-8 JSON: json.dumps(body, ensure_ascii=False) without the
    spaces, and without the Python layer that builds a new C encoder for every call (a
    third of the encoding time of a typical body).  Bodies are trees decoded from the
    journal, so the circular-reference check is left out."""
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has it
        return lambda body: encoder.encode(body).encode("utf-8")
    c_encode = make(
        None, encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    return lambda body: "".join(c_encode(body, 0)).encode("utf-8")


encode_body = _make_body_encoder()


class Response:
    """An HTTP answer: status, headers (names in lower case) and body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> dict | None:
        try:
            data = json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def message(self) -> str:
        """The server's explanation, short and on one line."""
        data = self.json()
        text = str(data.get("message", "")) if data else self.body.decode("utf-8", "replace")
        text = " ".join(text.split())
        return text[:500] or http.client.responses.get(self.status, "")


class TransportError(Exception):
    """A call that got no HTTP answer.  `fatal` errors will not heal by retrying;
    `connecting`: it failed while opening the connection (DNS, TCP, the proxy tunnel, TLS),
    so nothing of the call reached the server."""

    def __init__(
        self, kind: str, message: str, fatal: bool = False, connecting: bool = False
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.fatal = fatal
        self.connecting = connecting


class Transport:
    def __init__(
        self,
        base_url: str,
        username: str,
        access_key: str,
        timeout: float = 15.0,
        ca_bundle: str | None = None,
        https_proxy: str | None = None,
        http_proxy: str | None = None,
        no_proxy: str | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"API URL must be http(s)://host[:port]: {base_url!r}")
        if parsed.scheme == "http" and not is_loopback(parsed.hostname):
            raise ValueError(
                f"refusing plain http:// to {parsed.hostname}: credentials would travel "
                "unencrypted (only loopback hosts may use http)"
            )
        self.scheme = parsed.scheme
        self.host = parsed.hostname
        self.port = parsed.port or (443 if self.scheme == "https" else 80)
        self.prefix = parsed.path
        self.timeout = timeout
        # Seconds to open a connection, when shorter than `timeout` (delivery shortens it
        # while the server has never answered: see delivery.UNREACHABLE_AFTER).
        self.connect_timeout: float | None = None
        token = base64.b64encode(f"{username}:{access_key}".encode()).decode("ascii")
        self._headers = {
            "Authorization": "Basic " + token,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "behave-bstack",
            "Connection": "keep-alive",
        }
        self._ssl = None
        if self.scheme == "https":
            self._ssl = ssl.create_default_context(cafile=ca_bundle or None)
        self.proxy = self._choose_proxy(https_proxy, http_proxy, no_proxy)
        default_port = 443 if self.scheme == "https" else 80
        self.host_header = self.host if self.port == default_port else f"{self.host}:{self.port}"
        if ":" in self.host and not self.host.startswith("["):
            self.host_header = f"[{self.host}]" + (
                "" if self.port == default_port else f":{self.port}"
            )
        self._local = threading.local()
        # The parts of every request that never change, joined once (see _request_bytes).
        self._url_start = self.prefix
        if self.proxy and self.scheme == "http":
            self._url_start = f"http://{self.host}:{self.port}{self.prefix}"  # absolute URI
        fields = [f"Host: {self.host_header}\r\n"]
        fields.extend(f"{k}: {v}\r\n" for k, v in self._headers.items())
        self._fields = "".join(fields)
        self._fields_without_body = "".join(f for f in fields if not f.startswith("Content-Type"))

    def __repr__(self) -> str:  # never show the Authorization header
        return f"Transport({self.scheme}://{self.host}:{self.port}{self.prefix})"

    # -- proxy --------------------------------------------------------------
    def _choose_proxy(self, https_proxy, http_proxy, no_proxy) -> urllib.parse.SplitResult | None:
        if is_loopback(self.host):
            return None
        import urllib.request  # only here: a slow import, and loopback needs none of it

        env = urllib.request.getproxies()
        if self.scheme == "https":
            proxy = https_proxy or env.get("https")
        else:
            proxy = http_proxy or env.get("http")
        if not proxy:
            return None
        bypass = no_proxy if no_proxy is not None else env.get("no")
        if bypass and urllib.request.proxy_bypass_environment(self.host, {"no": bypass}):
            return None
        if "://" not in proxy:
            proxy = "http://" + proxy
        return urllib.parse.urlsplit(proxy)

    def describe_route(self) -> str:
        target = f"{self.scheme}://{self.host}:{self.port}"
        if self.proxy:
            return f"{target} via proxy {self.proxy.hostname}:{self.proxy.port or 80}"
        return target

    def opening_timeout(self) -> float:
        return min(self.timeout, self.connect_timeout or self.timeout)

    def connect(self) -> http.client.HTTPConnection:
        """A new, not yet connected connection to the API host (through the proxy, if any).
        Its timeout is the one for opening it; _Wire sets the request timeout once open."""
        timeout = self.opening_timeout()
        if not self.proxy:
            if self.scheme == "https":
                return http.client.HTTPSConnection(
                    self.host, self.port, timeout=timeout, context=self._ssl
                )
            return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        proxy_host, proxy_port = self.proxy.hostname, self.proxy.port or 80
        if self.scheme == "http":
            # Plain http through a proxy: absolute-URI requests (see _send).
            return http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout)
        # https: a CONNECT tunnel through the proxy, then TLS to the API host inside it.
        headers = {}
        if self.proxy.username:
            user = urllib.parse.unquote(self.proxy.username)
            password = urllib.parse.unquote(self.proxy.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            headers["Proxy-Authorization"] = "Basic " + token
        conn = http.client.HTTPSConnection(
            proxy_host, proxy_port, timeout=timeout, context=self._ssl
        )
        conn.set_tunnel(self.host, self.port, headers=headers)
        return conn

    # -- calls --------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None) -> Response:
        payload = None if body is None else encode_body(body)
        conn = getattr(self._local, "conn", None)
        fresh = conn is None
        try:
            if fresh:
                conn = self._local.conn = _Wire(self.connect(), self.timeout)
        except Exception as exc:  # noqa: BLE001 - explained below
            self.drop_connection()
            raise self.explain(exc, connecting=True) from None
        try:
            return self._send(conn, method, path, payload)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
            self.drop_connection()
            if fresh:
                raise self.explain(exc) from None
            # A kept-alive connection the server had closed: one immediate retry on a new one.
            try:
                conn = self._local.conn = _Wire(self.connect(), self.timeout)
                return self._send(conn, method, path, payload)
            except Exception as exc2:  # noqa: BLE001 - every failure is explained below
                self.drop_connection()
                raise self.explain(exc2) from None
        except Exception as exc:  # noqa: BLE001
            self.drop_connection()
            raise self.explain(exc) from None

    def build_request(self, method: str, path: str, body: dict | None) -> bytes:
        payload = None if body is None else encode_body(body)
        return self._request_bytes(method, path, payload)

    def _request_bytes(self, method: str, path: str, payload: bytes | None) -> bytes:
        if payload is None:
            head = f"{method} {self._url_start}{path} HTTP/1.1\r\n{self._fields_without_body}\r\n"
            return head.encode("latin-1")
        head = (
            f"{method} {self._url_start}{path} HTTP/1.1\r\n{self._fields}"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        return head.encode("latin-1") + payload

    def _send(self, conn: _Wire, method: str, path: str, payload: bytes | None) -> Response:
        response, keep_alive = conn.exchange(self._request_bytes(method, path, payload))
        if not keep_alive:
            self.drop_connection()
        return response

    def drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken socket may fail; nothing to do
                pass

    def explain(self, exc: BaseException, connecting: bool = False) -> TransportError:
        """What an exception from a call means, in words that name the setting to change.
        connecting: it was raised while opening the connection."""
        error = self._explain(exc, connecting)
        error.connecting = connecting
        return error

    def _explain(self, exc: BaseException, connecting: bool) -> TransportError:
        route = self.describe_route()
        if isinstance(exc, ssl.SSLCertVerificationError):
            return TransportError(
                "tls",
                f"TLS certificate of {self.host} could not be verified ({exc.verify_message}) on "
                f"{route}. If a proxy or firewall re-signs TLS, give its CA certificate with "
                "proxyCaCertificate (browserstack.yml), BROWSERSTACK_CA_BUNDLE or -D bstack.ca_bundle",
                fatal=True,
            )
        if isinstance(exc, ssl.SSLError):
            return TransportError("tls", f"TLS handshake with {self.host} failed on {route}: {exc}")
        if isinstance(exc, OSError) and "Tunnel connection failed" in str(exc):
            fatal = "407" in str(exc)
            hint = " (check the proxy's user and password)" if fatal else ""
            return TransportError(
                "proxy",
                f"proxy refused the tunnel to {self.host}: {exc}{hint}; route {route}",
                fatal=fatal,
            )
        if isinstance(exc, (TimeoutError, socket.timeout)):
            if connecting:
                return TransportError(
                    "timeout",
                    f"no connection to {route} within {self.opening_timeout():g} s "
                    "(nothing answered: a firewall may drop the packets)",
                )
            return TransportError("timeout", f"no answer from {route} within {self.timeout:g} s")
        if isinstance(exc, socket.gaierror):
            name = self.proxy.hostname if self.proxy else self.host
            return TransportError("dns", f"cannot resolve {name} ({exc.strerror}) on {route}")
        if isinstance(exc, ConnectionRefusedError):
            return TransportError("connection", f"connection refused by {route}")
        if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
            return TransportError("connection", f"connection to {route} closed without an answer")
        if isinstance(exc, http.client.HTTPException):
            return TransportError("protocol", f"bad HTTP answer from {route}: {type(exc).__name__}")
        if isinstance(exc, OSError):
            return TransportError("connection", f"cannot reach {route}: {exc.strerror or exc}")
        return TransportError("unknown", f"call to {route} failed: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        self.drop_connection()


class _Wire:
    """One kept-alive connection.  http.client opens it (TCP, the proxy tunnel, TLS); each
    request and answer then goes over the socket directly: one send per request and a small
    parser (parse_answer), because http.client's per-call machinery (email-style header
    parsing, several sends) costs more CPU than the rest of a call together."""

    def __init__(self, conn: http.client.HTTPConnection, timeout: float | None = None) -> None:
        conn.connect()
        self.conn = conn
        self.sock = conn.sock
        if timeout is not None:
            self.sock.settimeout(timeout)  # opened within the connect timeout; now per request

    def close(self) -> None:
        self.conn.close()

    def exchange(self, request: bytes) -> tuple[Response, bool]:
        """Send a request and wait for its answer (and whether the connection stays usable)."""
        self.sock.sendall(request)
        buffer = bytearray()
        while True:
            data = self.sock.recv(65536)
            buffer += data
            parsed = parse_answer(buffer, at_eof=not data)
            if parsed is not None:
                response, keep_alive, _ = parsed
                return response, keep_alive


def parse_answer(buffer: bytearray, at_eof: bool = False) -> tuple[Response, bool, int] | None:
    """A complete answer at the start of buffer: (response, keep_alive, bytes used), or
    None while more bytes are needed."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > 65536:
            raise http.client.LineTooLong("header")
        if at_eof:
            raise http.client.RemoteDisconnected("closed without an answer")
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise http.client.BadStatusLine(head[0][:100])
    status = int(parts[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    start = end + 4
    if 100 <= status < 200:  # an interim answer; the real one follows
        rest = parse_answer(buffer[start:], at_eof)
        if rest is None:
            return None
        response, keep_alive, used = rest
        return response, keep_alive, start + used
    keep_alive = headers.get("connection", "").lower() != "close"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, position = [], start
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return _incomplete(at_eof)
            size = int(bytes(buffer[position:line_end]).split(b";")[0].strip() or b"0", 16)
            position = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n\r\n", position - 2)
                if trailer_end < 0:
                    return _incomplete(at_eof)
                return Response(status, headers, b"".join(body)), keep_alive, trailer_end + 4
            if len(buffer) < position + size + 2:
                return _incomplete(at_eof)
            body.append(bytes(buffer[position : position + size]))
            position += size + 2
    if "content-length" in headers:
        length = int(headers["content-length"])
        if len(buffer) < start + length:
            return _incomplete(at_eof)
        return (
            Response(status, headers, bytes(buffer[start : start + length])),
            keep_alive,
            start + length,
        )
    if not at_eof:
        return None  # the body runs to the end of the connection
    return Response(status, headers, bytes(buffer[start:])), False, len(buffer)


def _incomplete(at_eof: bool):
    if at_eof:
        raise http.client.IncompleteRead(b"")
    return None


class _Slot:
    """A connection of the Sender and the request it is carrying."""

    __slots__ = ("wire", "key", "request", "sent", "buffer", "deadline", "reused", "received")

    def __init__(self, wire: _Wire) -> None:
        self.wire = wire
        self.key = None
        self.request = b""
        self.sent = 0
        self.buffer = bytearray()
        self.deadline = 0.0
        self.reused = False
        self.received = False


class Sender:
    """Many requests in flight from one thread: non-blocking sockets and a selector.

    Delivery makes thousands of small calls; a thread per call in flight cost about three
    times the CPU of the call itself (handing work and answers between threads under the
    GIL), so calls are multiplexed instead.  Connections are opened by http.client
    (blocking, bounded by the request timeout: TCP, the proxy tunnel, TLS) and kept alive.
    A kept-alive connection that the server had closed before answering is retried once at
    once on a new one.

    A connection stays registered with the selector for as long as it is open: while idle,
    for reading, so that one the server closed (or sent stray bytes on) is dropped before
    it is used again, and reusing one usually needs no change of its registration.
    """

    def __init__(self, transport: Transport, slots: int) -> None:
        self.transport = transport
        self.slots = max(1, slots)
        self.selector = selectors.DefaultSelector()
        self.idle: list[_Slot] = []
        self.busy: dict[int, _Slot] = {}  # fileno -> slot
        self.done: list[tuple[object, Response | None, TransportError | None]] = []

    def free(self) -> int:
        return self.slots - len(self.busy)

    def in_flight(self) -> int:
        return len(self.busy)

    def submit(self, key, method: str, path: str, body: dict | None) -> None:
        request = self.transport.build_request(method, path, body)
        slot = self.idle.pop() if self.idle else None
        self._start(slot, key, request)

    def _start(self, slot: _Slot | None, key, request: bytes) -> None:
        reused = slot is not None
        if slot is None:
            try:
                wire = _Wire(self.transport.connect())
                wire.sock.setblocking(False)
            except Exception as exc:  # noqa: BLE001 - explained for the caller
                self.done.append((key, None, self.transport.explain(exc, connecting=True)))
                return
            slot = _Slot(wire)
        slot.key, slot.request, slot.sent = key, request, 0
        slot.buffer.clear()
        slot.deadline = time.monotonic() + self.transport.timeout
        slot.reused, slot.received = reused, False
        fileno = slot.wire.sock.fileno()
        self.busy[fileno] = slot
        events = self._send_at_once(slot)
        if reused:
            self.selector.modify(fileno, events, slot)  # no system call when only reading
        else:
            self.selector.register(fileno, events, slot)

    @staticmethod
    def _send_at_once(slot: _Slot) -> int:
        """Send what the socket takes now (on a kept-alive connection, usually the whole
        request), so the loop does not first wait to be told the socket is writable.
        Returns what to wait for next.  An error is left for the loop's own send, which
        meets it again and handles it (a stale connection is retried)."""
        try:
            slot.sent = slot.wire.sock.send(slot.request)
        except OSError:  # would block (TLS: wants to read or write), or a broken connection
            return selectors.EVENT_WRITE
        return selectors.EVENT_READ if slot.sent >= len(slot.request) else selectors.EVENT_WRITE

    def poll(self, timeout: float) -> list[tuple[object, Response | None, TransportError | None]]:
        """Progress every request; return the (key, response, error) of those that ended."""
        if self.busy and not self.done:
            soonest = min(slot.deadline for slot in self.busy.values()) - time.monotonic()
            for item, mask in self.selector.select(max(0.0, min(timeout, soonest))):
                slot = item.data
                if self.busy.get(item.fd) is not slot:
                    if slot in self.idle:
                        self._drop_idle(slot)  # readable while idle: closed by the server
                    continue
                try:
                    if mask & selectors.EVENT_WRITE:
                        self._send(slot)
                    elif mask & selectors.EVENT_READ:
                        self._receive(slot)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    continue
                except Exception as exc:  # noqa: BLE001 - ends this request only
                    self._fail(slot, exc)
        elif not self.done and timeout > 0:
            time.sleep(timeout)
        now = time.monotonic()
        for slot in [s for s in self.busy.values() if s.deadline <= now]:
            self._fail(slot, TimeoutError())
        done, self.done = self.done, []
        return done

    def _send(self, slot: _Slot) -> None:
        slot.sent += slot.wire.sock.send(memoryview(slot.request)[slot.sent :])
        if slot.sent >= len(slot.request):
            self.selector.modify(slot.wire.sock.fileno(), selectors.EVENT_READ, slot)

    def _receive(self, slot: _Slot) -> None:
        sock = slot.wire.sock
        data = sock.recv(65536)
        at_eof = not data
        slot.buffer += data
        while not at_eof and isinstance(sock, ssl.SSLSocket) and sock.pending():
            slot.buffer += sock.recv(65536)  # TLS may hold more decrypted bytes
        slot.received = slot.received or bool(data)
        parsed = parse_answer(slot.buffer, at_eof)
        if parsed is None:
            return
        response, keep_alive, _ = parsed
        self._release(slot, keep=keep_alive)
        self.done.append((slot.key, response, None))

    def _release(self, slot: _Slot, keep: bool) -> None:
        fileno = slot.wire.sock.fileno()
        del self.busy[fileno]
        if keep:
            self.idle.append(slot)  # still registered for reading (see the class)
        else:
            self.selector.unregister(fileno)
            slot.wire.close()

    def _drop_idle(self, slot: _Slot) -> None:
        self.idle.remove(slot)
        self.selector.unregister(slot.wire.sock.fileno())
        slot.wire.close()

    def _fail(self, slot: _Slot, exc: BaseException) -> None:
        key, request = slot.key, slot.request
        stale = (
            slot.reused
            and not slot.received
            and isinstance(
                exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
            )
        )
        self._release(slot, keep=False)
        if stale:
            self._start(None, key, request)  # the server had closed it while idle
        else:
            self.done.append((key, None, self.transport.explain(exc)))

    def close(self) -> None:
        for slot in list(self.busy.values()):
            self._release(slot, keep=False)
        for slot in list(self.idle):
            self._drop_idle(slot)
        self.selector.close()
