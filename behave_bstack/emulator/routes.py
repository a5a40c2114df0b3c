"""Which request is which API call, and the answer to one that no fault intercepted.

Runs in the emulator's process (the tests' process, or ``behave-bstack serve``): called by
the reactor's thread (reactor.py, via ``TraServer._answer_plain``) and by the handler
threads (handler.py).  The seven endpoints of tra-api.md §2 are checked in this order:
Basic auth (401, plain-text body), route (404 unknown path, 405 wrong method), body (400:
not UTF-8 JSON or no ``Content-Type: application/json``), ``validation.validate`` (422,
every error joined in ``message``), then state.py's ids (404 unknown build / test / hook in
that build) and cross-call rules (422).  Every API call, answered or not, is recorded
(``CallRecord``: ``status`` None: no answer; ``fault``: the fault that shaped it;
``error``: why it was refused).  Also the loopback rules: the emulator binds loopback
hosts only, and its pages and control endpoints answer only requests addressed to one.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
import time
import traceback
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from .faults import UNAUTHORIZED
from .state import CallRecord, error_answer
from .validation import validate

if TYPE_CHECKING:
    from .server import TraServer

__all__ = [
    "addressed_to_loopback",
    "is_loopback",
    "message_of",
    "new_call",
    "parse_for_record",
    "process_call",
    "response_bytes",
    "route_of",
]

_REASONS = {s.value: s.phrase for s in HTTPStatus}
# raw-body escapes that can decode to NUL or a surrogate; without them the text scan is skipped
_RISKY_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF])")
_METHODS = {
    "build_start": "POST",
    "build_finish": "PUT",
    "test_start": "POST",
    "test_finish": "PUT",
    "hook_start": "POST",
    "hook_finish": "PUT",
    "logs": "POST",
}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (the only hosts we may bind)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def addressed_to_loopback(host: bytes | None) -> bool:
    """The Host header names this machine (or is absent, as HTTP/1.0 allows): a browser
    sends the name it resolved, so a page of another site rebound to 127.0.0.1 is refused."""
    if host is None:
        return True
    name = host.decode("latin-1").strip()
    if name.startswith("["):
        name = name[1 : name.find("]")]
    else:
        name = name.rpartition(":")[0] if ":" in name else name
    return is_loopback(name.lower())


def route_of(method: str, path: str) -> tuple[str, str | None, str | None] | str | None:
    """Map a request to (op, build id, run id); "405" for a known path with a wrong method."""
    parts = path.split("/")
    if len(parts) < 5 or parts[1] != "ext" or parts[2] != "v1" or parts[3] != "builds":
        return None
    rest = parts[4:]
    n = len(rest)
    found: tuple[str, str | None, str | None] | None = None
    if n == 1 and rest[0] == "start":
        found = ("build_start", None, None)
    elif n == 2 and rest[0]:
        if rest[1] == "finish":
            found = ("build_finish", rest[0], None)
        elif rest[1] == "logs":
            found = ("logs", rest[0], None)
    elif n == 3 and rest[0] and rest[2] == "start" and rest[1] in ("tests", "hooks"):
        found = ("test_start" if rest[1] == "tests" else "hook_start", rest[0], None)
    elif n == 4 and rest[0] and rest[2] and rest[3] == "finish" and rest[1] in ("tests", "hooks"):
        found = ("test_finish" if rest[1] == "tests" else "hook_finish", rest[0], rest[2])
    if found is None:
        return None
    return found if _METHODS[found[0]] == method else "405"


def new_call(method: str, path: str) -> tuple[Any, CallRecord]:
    """The route of an API call (see route_of) and its record, not yet answered."""
    route = route_of(method, path)
    op, build_id, _ = route if isinstance(route, tuple) else (None, None, None)
    return route, CallRecord(0, time.time(), method, path, op, build_id, None, None)


def process_call(
    emu: TraServer,
    route: Any,
    method: str,
    headers: dict[bytes, bytes],
    raw: bytes,
    call: CallRecord,
) -> tuple[int, bytes, str, tuple]:
    """Answer an API call that no fault intercepted; records it in state.  Used by the
    handler threads and by the reactor (reactor.py)."""
    state = emu.state
    op, build_id, run_id = route if isinstance(route, tuple) else (None, None, None)

    def reject(status: int, message: str, body: Any = None) -> tuple[int, bytes, str, tuple]:
        call.status, call.error = status, message
        call.body = body if body is not None else parse_for_record(raw)
        state.add_call(call)
        return status, error_answer(status, message)[1], "application/json", ()

    if not emu._authorized(headers.get(b"authorization")):
        call.status, call.body = 401, parse_for_record(raw)
        call.error = "wrong or missing credentials"
        state.add_call(call)
        return 401, UNAUTHORIZED.body, UNAUTHORIZED.content_type, UNAUTHORIZED.headers
    if route is None:
        return reject(404, f"no such endpoint: {method} {call.path}")
    if route == "405":
        return reject(405, f"method {method} not allowed on {call.path}")
    ctype = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    if ctype != b"application/json":
        return reject(400, "Content-Type must be application/json")
    try:
        text = raw.decode("utf-8")
        body = _DECODER.decode(text)
    except (UnicodeDecodeError, ValueError) as exc:
        return reject(400, f"malformed JSON: {exc}")
    errs = validate(op, body, check_text=_RISKY_ESCAPE.search(raw) is not None)  # type: ignore[arg-type]
    if errs:
        return reject(422, "; ".join(errs), body)
    call.body = body
    try:
        status, out = state.apply(op, build_id, run_id, body, call)  # type: ignore[arg-type]
    except Exception:  # a bug here must surface as a 500, not as a dropped connection
        traceback.print_exc(file=sys.stderr)
        status, out = error_answer(500, "emulator error (see its stderr)")
    call.status = status
    if status >= 400:  # refused by a cross-call rule (unknown run, hook_type): say why
        call.error = message_of(out)
    return status, out, "application/json", ()


def response_bytes(
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: Iterable[tuple[str, str]] = (),
    close: bool = False,
) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    )
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode("latin-1") + b"\r\n" + body


def message_of(out: bytes) -> str | None:
    try:
        message = json.loads(out).get("message")
    except (ValueError, AttributeError):
        return None
    return message if isinstance(message, str) else None


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)  # NaN/Infinity are not JSON


def parse_for_record(raw: bytes) -> Any:
    """Best-effort body for the call log: parsed JSON, else the text."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
