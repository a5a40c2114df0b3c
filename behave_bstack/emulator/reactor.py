"""One thread that serves every keep-alive connection while no fault is set.

A thread per connection (socketserver's way) wakes a thread for every call; on a machine
whose cores the test run shares with this server, each such wake-up may take a core from
the process under test (the delivery benchmark measured behave preempted ~1,100 times per
2,000-scenario run; ~50 times with this reactor, and live runs 1.38-1.45x -> 1.17-1.22x
its `-f null` time).  Here one thread waits on all connections at once and answers
whatever arrived in one go.

Only the plain case is served here: an API call over HTTP/1.1 with a Content-Length body
while ``faults.active`` is False.  Anything else (a fault to apply, a path outside
``/ext/``: a control endpoint or a page, a request the handler would refuse,
``Connection: close``, ``Expect``, chunked bodies) hands the connection, with the bytes
already read, to a thread running the request handler, as before; it stays there until
it closes.
"""

from __future__ import annotations

import io
import selectors
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

_MAX_HEAD = 131072  # bytes of request head before the handler gets to refuse it
_MAX_INLINE_BODY = 1 << 20  # larger bodies go to the handler, which has the body limit


class Reactor:
    def __init__(self, emulator: Any) -> None:
        """`emulator`: answers plain calls (`_answer_plain`) and tracks connections."""
        self.emulator = emulator
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._adopted: list[tuple[socket.socket, Callable[[bytes], None]]] = []
        self._lock = threading.Lock()
        self._buffers: dict[socket.socket, bytearray] = {}
        self._handlers: dict[socket.socket, Callable[[bytes], None]] = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tra-emulator-reactor", daemon=True)
        self._thread.start()

    def adopt(self, conn: socket.socket, handler: Callable[[bytes], None]) -> None:
        """Take a newly accepted connection (called by the accepting thread).  If it is
        handed off, `handler(pending)` serves it in a thread of its own, `pending` being
        the bytes already read from it."""
        with self._lock:
            self._adopted.append((conn, handler))
        self._wake()

    def stop(self) -> None:
        self._stopping = True
        self._wake()
        self._thread.join(timeout=5)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, _ in self._selector.select():
                    if key.data is None:
                        self._take_adopted()
                        continue
                    try:
                        self._readable(key.fileobj)
                    except Exception:  # a bug: that connection ends, the others go on
                        traceback.print_exc(file=sys.stderr)
                        self._close(key.fileobj)
        finally:
            for conn in list(self._buffers):
                self._close(conn)
            with self._lock:
                adopted, self._adopted = self._adopted, []
            for conn, _ in adopted:
                conn.close()
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _take_adopted(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            adopted, self._adopted = self._adopted, []
        for conn, handler in adopted:
            conn.setblocking(False)
            self.emulator._track(conn, True)
            self._buffers[conn] = bytearray()
            self._handlers[conn] = handler
            self._selector.register(conn, selectors.EVENT_READ, True)

    def _readable(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        buffer = self._buffers[conn]
        buffer += data
        answers = []
        hand_off = False
        while buffer:
            request = _complete_request(buffer)
            if request is None:
                break  # wait for the rest
            if request is False or self.emulator.faults.active:
                hand_off = True
                break
            size, method, path, headers, body = request
            del buffer[:size]
            answers.append(self.emulator._answer_plain(method, path, headers, body))
        # earlier answers first: the handler's thread answers what comes after them
        if answers and not self._send(conn, b"".join(answers)):
            self._close(conn)
        elif hand_off:
            self._hand_off(conn, bytes(buffer))

    def _send(self, conn: socket.socket, data: bytes) -> bool:
        try:
            sent = conn.send(data)
            if sent < len(data):  # a full socket buffer: rare for these small answers
                conn.setblocking(True)
                conn.settimeout(10)
                conn.sendall(data[sent:])
                conn.setblocking(False)
        except OSError:
            return False
        return True

    def _hand_off(self, conn: socket.socket, pending: bytes) -> None:
        self._forget(conn)
        conn.setblocking(True)
        threading.Thread(
            target=self._handlers.pop(conn),
            args=(pending,),
            daemon=True,
        ).start()

    def _forget(self, conn: socket.socket) -> None:
        try:
            self._selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        self._buffers.pop(conn, None)
        self.emulator._track(conn, False)

    def _close(self, conn: socket.socket) -> None:
        self._forget(conn)
        self._handlers.pop(conn, None)
        try:
            conn.close()
        except OSError:
            pass


def _complete_request(buffer: bytearray):
    """(size, method, path, headers, body) of the first request in `buffer`; None when it
    is not all there yet; False when it is not the plain case (the handler decides)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return False if len(buffer) > _MAX_HEAD or b"\n\n" in buffer else None
    head = bytes(buffer[:end])
    if head.count(b"\n") != head.count(b"\r\n"):
        return False
    lines = head.split(b"\r\n")
    parts = lines[0].split()
    if len(parts) != 3 or parts[2] != b"HTTP/1.1" or len(lines) > 201:
        return False
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            return False
        headers[name.strip().lower()] = value.strip()
    if (
        b"transfer-encoding" in headers
        or b"expect" in headers
        or headers.get(b"connection", b"").lower() == b"close"
    ):
        return False
    length = headers.get(b"content-length", b"0")
    if not length.isdigit() or int(length) > _MAX_INLINE_BODY:
        return False
    size = end + 4 + int(length)
    if len(buffer) < size:
        return None
    target = parts[1].decode("latin-1")
    path = target.partition("?")[0]
    if not path.startswith("/ext/"):  # control endpoints and pages: the handler's
        return False
    return size, parts[0].decode("latin-1"), path, headers, bytes(buffer[end + 4 : size])


class PrefixedReader(io.RawIOBase):
    """A connection's bytes, starting with those the reactor had already read."""

    def __init__(self, pending: bytes, conn: socket.socket) -> None:
        self._pending = memoryview(pending)
        self._conn = conn

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        if self._pending:
            n = min(len(target), len(self._pending))
            target[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        return self._conn.recv_into(target)
