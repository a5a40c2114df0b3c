"""A local, strict stand-in for the TRA ingestion API (tra-api.md) with fault injection.

Usage::

    with TraServer(username="bs_user", access_key="bs_key") as srv:
        ...  # point the client at srv.url
        assert srv.state.tests_in(build_id)[0].finish_count == 1

The seven endpoints of tra-api.md §2 are served over real HTTP/1.1 (keep-alive) on
loopback. Every API call is checked in this order: Basic auth (401, plain-text body),
route (404 unknown path, 405 wrong method), body (400: not UTF-8 JSON or no
``Content-Type: application/json``), ``validation.validate`` (422, every error joined in
``message``), ids (404 unknown build / test / hook in that build), then cross-call rules
(422): a finish's ``hook_type`` equals its start's, log entries, ``hooks[]`` and
``test_run_id`` name runs that exist in that build. Duplicate finishes are accepted (200)
and counted (``finish_count``). Every API call, answered or not, is kept in ``srv.calls``
(``status`` None: no answer; ``fault``: the fault that shaped it; ``error``: why it was
refused). ``srv.on_call``, when set, is given each API call's record once it is answered
or dropped (call_line.py formats the line ``behave-bstack serve`` prints); it is None by
default, so tests and the benchmark pay nothing. Two build starts with the same
project_name + name + non-empty build_run_identifier share one build id.

Fault injection (``srv.faults.<method>(...)`` or ``POST /_emulator/faults``). Faults apply
to API paths only, never to ``/_emulator/...``. Count-limited faults take ``count`` (None =
until cleared) and an optional filter: ``op`` (one of validation.OPS) and/or ``path`` (a
regex searched in the request path); the first matching fault with calls left is used.

=====================  =================================================================
``latency(ms, path)``  sleep ``ms`` before answering every (matching) API call; 0 = off
``fail(status, ...)``  answer the next ``count`` matching calls with ``status``; ``body``
                       (str = plain text, dict = JSON, None = standard JSON error) and
                       ``retry_after`` (seconds, sets ``Retry-After``) optional. The call
                       is not processed.
``too_many_requests``  ``fail(429, ...)``; ``retry_after=None`` sends no ``Retry-After``
``rate_limit(rps)``    token bucket of ``rps`` calls/second (burst ``burst`` or ``rps``);
                       excess calls get 429 with ``Retry-After``. ``None`` = off
``drop(count, mode)``  no answer: ``close`` (read the request, close the socket),
                       ``reset`` (RST before reading the body: reset mid-request),
                       ``partial`` (status line and half a body, then close).
                       ``when="after"`` processes the call first (the response is lost).
``downtime(on, ...)``  every API call dropped (``mode="drop"``) or the listening socket
                       closed so connects are refused (``mode="refuse"``), for ``seconds``
                       or until ``downtime(False)``
``slow(seconds, ...)`` process the call, then sleep ``seconds`` before answering (longer
                       than a client timeout: the call took effect, the client saw none)
``garbage(count, k)``  process the call, then answer 200 with a non-JSON body: ``html``,
                       ``truncated`` JSON (correct Content-Length) or ``empty``
``unauthorized(on)``   401 on every call, as with wrong credentials
``reject(substring)``  422 ``message`` for calls whose raw body contains ``substring``
                       (also matched in its ``\\uXXXX``-escaped JSON form); not processed
``clear()``            remove every fault
=====================  =================================================================

Order when several apply: downtime, latency, rate limit, unauthorized, drop, fail, reject,
(processing), slow, garbage / drop(when="after").

Control endpoints (no auth):
``GET /_emulator/state[?calls=1]`` recorded state as JSON (builds, tests, hooks, logs,
``calls`` count, or the calls themselves with ``?calls=1``); ``GET /_emulator/faults``;
``POST /_emulator/faults`` a JSON object whose keys are the method names above and whose
values are keyword arguments (an object), several of them (an array of objects), or the
single first argument (e.g. ``{"latency": 50, "fail": {"status": 503, "count": 2}}``);
``POST /_emulator/reset`` (state and calls; faults too unless ``{"faults": false}``);
``GET /_emulator/health``.

Control endpoints and pages answer only requests whose ``Host`` names a loopback address
(403 otherwise: a page of another site, DNS-rebound to 127.0.0.1, gets nothing).
Pages (no auth; a GET of any path outside ``/ext/`` and ``/_emulator/``, see page.py):
``GET /`` the builds received and the calls refused; ``GET /builds/<build_hashed_id>`` one
build's tests grouped by scope, with steps, failures, hook runs and logs.
"""

from __future__ import annotations

import base64
import functools
import io
import ipaddress
import json
import math
import os
import re
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count as _counter
from socketserver import TCPServer
from typing import Any

from .reactor import PrefixedReader, Reactor
from .validation import OPS, validate

__all__ = [
    "BuildRecord",
    "CallRecord",
    "EmulatorState",
    "Faults",
    "HookRunRecord",
    "LogRecord",
    "TestRunRecord",
    "TraServer",
    "is_loopback",
]

_MAX_BODY = 64 * 1024 * 1024
_REASONS = {s.value: s.phrase for s in HTTPStatus}
# raw-body escapes that can decode to NUL or a surrogate; without them the text scan is skipped
_RISKY_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF])")
_OK_MESSAGES = {
    "build_finish": b'{"success": true, "message": "Build finished successfully."}',
    "test_finish": b'{"success": true, "message": "Test run updated successfully."}',
    "hook_finish": b'{"success": true, "message": "Hook run updated successfully."}',
    "logs": b'{"success": true, "message": "Logs added successfully."}',
}
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


# --- recorded state -----------------------------------------------------------------------


@dataclass(eq=False)
class CallRecord:
    """One API call as received. ``status`` is what was sent (None: no answer)."""

    seq: int
    time: float
    method: str
    path: str
    op: str | None
    build_id: str | None
    body: Any  # parsed JSON, or the raw text when it was not JSON, or None
    status: int | None
    fault: str | None = None
    error: str | None = None  # the message of a refusal (4xx/5xx) this emulator wrote

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(eq=False)
class BuildRecord:
    id: str
    seq: int
    starts: list[dict] = field(default_factory=list)
    finishes: list[dict] = field(default_factory=list)
    tests: list[TestRunRecord] = field(default_factory=list)
    hooks: list[HookRunRecord] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)

    @property
    def start(self) -> dict:
        return self.starts[0]

    @property
    def finish_count(self) -> int:
        return len(self.finishes)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "seq": self.seq,
            "starts": self.starts,
            "finishes": self.finishes,
            "finish_count": len(self.finishes),
        }


@dataclass(eq=False)
class _RunRecord:
    uuid: str
    build_id: str
    seq: int  # global order of the start call
    start: dict
    finishes: list[dict] = field(default_factory=list)

    @property
    def finish(self) -> dict | None:
        """The last finish body (None if never finished)."""
        return self.finishes[-1] if self.finishes else None

    @property
    def finish_count(self) -> int:
        return len(self.finishes)

    def to_json(self) -> dict:
        return {
            "uuid": self.uuid,
            "build_id": self.build_id,
            "seq": self.seq,
            "start": self.start,
            "finishes": self.finishes,
            "finish_count": len(self.finishes),
        }


class TestRunRecord(_RunRecord):
    __test__ = False  # not a pytest test class


class HookRunRecord(_RunRecord):
    @property
    def hook_type(self) -> str:
        return self.start["hook_type"]


@dataclass(eq=False)
class LogRecord:
    build_id: str
    seq: int
    entry: dict

    def to_json(self) -> dict:
        return {"build_id": self.build_id, "seq": self.seq, "entry": self.entry}


class EmulatorState:
    """Everything the emulator accepted, guarded by one lock. Queries return copies."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._reset_fields()

    def _reset_fields(self) -> None:
        self._seq = _counter(1)
        self._builds: dict[str, BuildRecord] = {}
        self._build_keys: dict[tuple[str, str, str], str] = {}
        self._tests: dict[str, TestRunRecord] = {}
        self._hooks: dict[str, HookRunRecord] = {}
        self._logs: list[LogRecord] = []
        self._calls: list[CallRecord] = []

    def clear(self) -> None:
        with self.lock:
            self._reset_fields()

    # queries
    @property
    def builds(self) -> dict[str, BuildRecord]:
        with self.lock:
            return dict(self._builds)

    @property
    def tests(self) -> dict[str, TestRunRecord]:
        with self.lock:
            return dict(self._tests)

    @property
    def hooks(self) -> dict[str, HookRunRecord]:
        with self.lock:
            return dict(self._hooks)

    @property
    def logs(self) -> list[LogRecord]:
        with self.lock:
            return list(self._logs)

    @property
    def calls(self) -> list[CallRecord]:
        with self.lock:
            return list(self._calls)

    def build(self, build_id: str) -> BuildRecord:
        with self.lock:
            return self._builds[build_id]

    def tests_in(self, build_id: str) -> list[TestRunRecord]:
        """Test runs of a build in the order they were started."""
        with self.lock:
            b = self._builds.get(build_id)
            return list(b.tests) if b else []

    def hooks_in(self, build_id: str) -> list[HookRunRecord]:
        with self.lock:
            b = self._builds.get(build_id)
            return list(b.hooks) if b else []

    def logs_in(self, build_id: str) -> list[LogRecord]:
        with self.lock:
            b = self._builds.get(build_id)
            return list(b.logs) if b else []

    def calls_in(self, build_id: str | None = None, op: str | None = None) -> list[CallRecord]:
        """Calls filtered by build id and/or operation name, in arrival order."""
        with self.lock:
            return [
                c
                for c in self._calls
                if (build_id is None or c.build_id == build_id) and (op is None or c.op == op)
            ]

    def add_call(self, call: CallRecord) -> None:
        """Record a call that was not processed (fault, auth, 4xx)."""
        with self.lock:
            call.seq = next(self._seq)
            self._calls.append(call)

    def to_json(self, with_calls: bool = False) -> dict:
        with self.lock:
            return {
                "builds": [b.to_json() for b in self._builds.values()],
                "tests": [t.to_json() for t in self._tests.values()],
                "hooks": [h.to_json() for h in self._hooks.values()],
                "logs": [entry.to_json() for entry in self._logs],
                "calls": [c.to_json() for c in self._calls] if with_calls else len(self._calls),
            }

    def apply(
        self, op: str, build_id: str | None, run_id: str | None, body: dict, call: CallRecord
    ) -> tuple[int, bytes]:
        """Record a valid call and its effect; returns (status, response body)."""
        with self.lock:
            call.seq = next(self._seq)
            self._calls.append(call)
            return self._apply_locked(op, build_id, run_id, body, call.seq)

    def _apply_locked(
        self, op: str, build_id: str | None, run_id: str | None, body: dict, seq: int
    ) -> tuple[int, bytes]:
        if op == "build_start":
            bri = body.get("build_run_identifier")
            key = (body["project_name"], body["name"], bri) if bri else None
            bid = self._build_keys.get(key) if key else None
            if bid is None:
                bid = os.urandom(20).hex()  # 40 chars of [0-9a-f]
                self._builds[bid] = BuildRecord(bid, seq)
                if key:
                    self._build_keys[key] = bid
            self._builds[bid].starts.append(body)
            self._calls[-1].build_id = bid  # so calls_in(build_id) includes its start
            return 200, b'{"success": true, "build_hashed_id": "%s"}' % bid.encode()

        build = self._builds.get(build_id)  # type: ignore[arg-type]
        if build is None:
            return _error(404, f"build {build_id} not found")

        if op == "build_finish":
            build.finishes.append(body)
        elif op == "test_start":
            u = str(uuid.uuid4())
            rec = TestRunRecord(u, build.id, seq, body)
            self._tests[u] = rec
            build.tests.append(rec)
            return 200, b'{"success": true, "uuid": "%s"}' % u.encode()
        elif op == "hook_start":
            tid = body.get("test_run_id")
            if tid is not None and self._run_in(self._tests, tid, build.id) is None:
                return _error(422, f"test_run_id: unknown test run {tid} in build {build.id}")
            u = str(uuid.uuid4())
            hrec = HookRunRecord(u, build.id, seq, body)
            self._hooks[u] = hrec
            build.hooks.append(hrec)
            return 200, b'{"success": true, "uuid": "%s"}' % u.encode()
        elif op == "test_finish":
            test = self._run_in(self._tests, run_id, build.id)
            if test is None:
                return _error(404, f"test run {run_id} not found in build {build.id}")
            for i, h in enumerate(body.get("hooks") or ()):
                if self._run_in(self._hooks, h, build.id) is None:
                    return _error(422, f"hooks[{i}]: unknown hook run {h} in build {build.id}")
            test.finishes.append(body)
        elif op == "hook_finish":
            hook = self._run_in(self._hooks, run_id, build.id)
            if hook is None:
                return _error(404, f"hook run {run_id} not found in build {build.id}")
            if body["hook_type"] != hook.hook_type:
                return _error(
                    422,
                    f"hook_type: {body['hook_type']!r} differs from the start's {hook.hook_type!r}",
                )
            hook.finishes.append(body)
        elif op == "logs":
            entries = body["logs"]
            errs = []
            for i, e in enumerate(entries):
                if "test_run_uuid" in e:
                    if self._run_in(self._tests, e["test_run_uuid"], build.id) is None:
                        errs.append(f"logs[{i}].test_run_uuid: unknown test run in this build")
                elif self._run_in(self._hooks, e["hook_run_uuid"], build.id) is None:
                    errs.append(f"logs[{i}].hook_run_uuid: unknown hook run in this build")
            if errs:
                return _error(422, "; ".join(errs))
            recs = [LogRecord(build.id, seq, e) for e in entries]
            self._logs.extend(recs)
            build.logs.extend(recs)
        return 200, _OK_MESSAGES[op]

    @staticmethod
    def _run_in(table: dict, run_id: object, build_id: str) -> Any:
        rec = table.get(run_id) if isinstance(run_id, str) else None
        return rec if rec is not None and rec.build_id == build_id else None


def _error(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"success": False, "message": message}).encode()


# --- faults -------------------------------------------------------------------------------


@dataclass(eq=False)
class _Rule:
    kind: str  # fail | drop | slow | garbage | reject
    remaining: int | None  # None: unlimited
    op: str | None = None
    path: re.Pattern | None = None
    params: dict = field(default_factory=dict)

    def matches(self, op: str | None, path: str) -> bool:
        return (self.op is None or self.op == op) and (
            self.path is None or self.path.search(path) is not None
        )

    def to_json(self) -> dict:
        d = {"kind": self.kind, "remaining": self.remaining, "op": self.op}
        d["path"] = self.path.pattern if self.path else None
        d.update({k: v for k, v in self.params.items() if k not in ("needles", "action")})
        return d


@dataclass
class Action:
    """What the handler must do instead of (or on top of) a normal answer."""

    name: str  # the fault's name, recorded on the call
    drop: str | None = None  # close | reset | partial
    status: int | None = None
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


_GARBAGE = {
    "html": ("text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "truncated": ("application/json", b'{"success": true, "uu'),
    "empty": ("application/json", b""),
}


class Faults:
    """Programmable misbehaviour; see the module docstring. Thread-safe."""

    _NAMES = (
        "latency",
        "fail",
        "too_many_requests",
        "rate_limit",
        "drop",
        "downtime",
        "slow",
        "garbage",
        "unauthorized",
        "reject",
        "clear",
    )

    def __init__(self, set_listening: Callable[[bool], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._set_listening = set_listening  # callback(bool) for downtime mode="refuse"
        self._timer: threading.Timer | None = None
        self._refusing = False  # listener closed by downtime(mode="refuse")
        self._reset_fields()

    def _reset_fields(self) -> None:
        self.active = False  # read without the lock on the hot path: a bool is atomic
        self._latency = 0.0
        self._latency_path: re.Pattern | None = None
        self._rate: float | None = None
        self._burst = 0.0
        self._tokens = 0.0
        self._refill_at = 0.0
        self._unauthorized = False
        self._down_until = 0.0
        self._down_mode = "drop"
        self._rules: list[_Rule] = []

    def _touch(self) -> None:
        self.active = bool(
            self._latency or self._rate or self._unauthorized or self._down_until or self._rules
        )

    # --- programming API
    def clear(self) -> None:
        self.downtime(False)
        with self._lock:
            self._reset_fields()

    def latency(self, ms: float, path: str | None = None) -> None:
        with self._lock:
            self._latency = max(0.0, float(ms)) / 1000.0
            self._latency_path = re.compile(path) if path else None
            self._touch()

    def rate_limit(self, rps: float | None, burst: float | None = None) -> None:
        with self._lock:
            if rps is None or rps <= 0:
                self._rate = None
            else:
                self._rate = float(rps)
                self._burst = float(burst) if burst else max(1.0, float(rps))
                self._tokens = self._burst
                self._refill_at = time.monotonic()
            self._touch()

    def unauthorized(self, on: bool = True) -> None:
        with self._lock:
            self._unauthorized = bool(on)
            self._touch()

    def downtime(self, on: bool = True, seconds: float | None = None, mode: str = "drop") -> None:
        if mode not in ("drop", "refuse"):
            raise ValueError("downtime mode must be 'drop' or 'refuse'")
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            refuse = bool(on) and mode == "refuse"
            flip = refuse != self._refusing
            self._refusing = refuse
            if on:
                self._down_until = time.monotonic() + seconds if seconds else math.inf
                self._down_mode = mode
                if seconds:
                    self._timer = threading.Timer(seconds, self.downtime, (False,))
                    self._timer.daemon = True
            else:
                self._down_until = 0.0
            self._touch()
            timer = self._timer
        if flip and self._set_listening is not None:
            self._set_listening(not refuse)
        if timer is not None:
            timer.start()

    def fail(
        self,
        status: int = 500,
        count: int | None = 1,
        body: str | dict | None = None,
        retry_after: float | None = None,
        op: str | None = None,
        path: str | None = None,
    ) -> None:
        if body is None:
            body = {"success": False, "message": f"emulated {status} {_REASONS.get(status, '')}"}
        if isinstance(body, dict):
            ctype, raw = "application/json", json.dumps(body).encode()
        else:
            ctype, raw = "text/plain; charset=utf-8", str(body).encode()
        headers = (("Retry-After", _fmt_seconds(retry_after)),) if retry_after is not None else ()
        params = {"status": int(status), "retry_after": retry_after, "body": body}
        self._add(_Rule("fail", count, op, _rx(path), params), ctype=ctype, raw=raw, hdr=headers)

    def too_many_requests(
        self,
        count: int | None = 1,
        retry_after: float | None = None,
        op: str | None = None,
        path: str | None = None,
    ) -> None:
        self.fail(429, count, None, retry_after, op, path)

    def drop(
        self,
        count: int | None = 1,
        mode: str = "close",
        when: str = "before",
        op: str | None = None,
        path: str | None = None,
    ) -> None:
        if mode not in ("close", "reset", "partial") or when not in ("before", "after"):
            raise ValueError("drop mode: close|reset|partial; when: before|after")
        if mode == "reset" and when == "after":
            raise ValueError("drop mode='reset' happens before the body is read")
        self._add(_Rule("drop", count, op, _rx(path), {"mode": mode, "when": when}))

    def slow(
        self,
        seconds: float,
        count: int | None = 1,
        op: str | None = None,
        path: str | None = None,
    ) -> None:
        self._add(_Rule("slow", count, op, _rx(path), {"seconds": float(seconds)}))

    def garbage(
        self,
        count: int | None = 1,
        kind: str = "html",
        op: str | None = None,
        path: str | None = None,
    ) -> None:
        if kind not in _GARBAGE:
            raise ValueError(f"garbage kind must be one of {', '.join(_GARBAGE)}")
        self._add(_Rule("garbage", count, op, _rx(path), {"kind": kind}))

    def reject(
        self,
        substring: str,
        message: str | None = None,
        count: int | None = None,
        op: str | None = None,
        path: str | None = None,
    ) -> None:
        if not substring:
            raise ValueError("reject needs a non-empty substring")
        needles = {substring.encode(), json.dumps(substring)[1:-1].encode()}
        msg = message or f"rejected: body contains {substring!r}"
        params = {"substring": substring, "message": msg, "needles": tuple(needles)}
        self._add(_Rule("reject", count, op, _rx(path), params))

    def _add(self, rule: _Rule, ctype: str = "", raw: bytes = b"", hdr: tuple = ()) -> None:
        if rule.op is not None and rule.op not in OPS:
            raise ValueError(f"unknown op {rule.op!r}")
        if rule.remaining is not None and rule.remaining < 1:
            raise ValueError("count must be >= 1 (or None for unlimited)")
        if rule.kind == "fail":
            rule.params["action"] = Action(
                "fail", status=rule.params["status"], body=raw, content_type=ctype, headers=hdr
            )
        with self._lock:
            self._rules.append(rule)
            self._touch()

    def apply(self, spec: dict) -> None:
        """Program faults from a JSON object (see the module docstring)."""
        if not isinstance(spec, dict):
            raise ValueError("faults spec must be a JSON object")
        for name, value in spec.items():
            if name not in self._NAMES:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(self._NAMES)}")
            if name == "downtime" and isinstance(value, dict) and value.get("mode") == "refuse":
                if not value.get("seconds"):
                    raise ValueError("downtime mode 'refuse' over HTTP needs 'seconds'")
            fn = getattr(self, name)
            for item in value if isinstance(value, list) else [value]:
                if name == "clear":
                    if item:
                        fn()
                elif isinstance(item, dict):
                    fn(**item)
                else:
                    fn(item)

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "latency_ms": self._latency * 1000.0,
                "latency_path": self._latency_path.pattern if self._latency_path else None,
                "rate_limit": self._rate,
                "unauthorized": self._unauthorized,
                "downtime": bool(self._down_until and time.monotonic() < self._down_until),
                "downtime_mode": self._down_mode,
                "rules": [r.to_json() for r in self._rules],
            }

    # --- hot path, called only when self.active
    def _take(self, wanted: Any, op: str | None, path: str) -> _Rule | None:
        """Consume one call from the first rule with wanted(rule) that matches the call."""
        for rule in self._rules:
            if wanted(rule) and rule.matches(op, path):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                        self._touch()
                return rule
        return None

    def before(self, op: str | None, path: str) -> tuple[float, Action | None]:
        """Decide on a call before its body is read: (latency seconds, action or None)."""
        with self._lock:
            if self._down_until:
                if time.monotonic() < self._down_until:
                    return 0.0, Action("downtime", drop="close")
                self._down_until = 0.0
                self._touch()
            lat = self._latency
            if lat and self._latency_path is not None and not self._latency_path.search(path):
                lat = 0.0
            if self._rate is not None:
                now = time.monotonic()
                self._tokens = min(self._burst, self._tokens + (now - self._refill_at) * self._rate)
                self._refill_at = now
                if self._tokens < 1.0:
                    wait = max(1, math.ceil((1.0 - self._tokens) / self._rate))
                    return lat, Action(
                        "rate_limit",
                        status=429,
                        body=b'{"success": false, "message": "Rate limit exceeded"}',
                        headers=(("Retry-After", str(wait)),),
                    )
                self._tokens -= 1.0
            if self._unauthorized:
                return lat, _UNAUTHORIZED
            rule = self._take(_is_before_rule, op, path)
            if rule is None:
                return lat, None
            if rule.kind == "fail":
                return lat, rule.params["action"]
            return lat, Action("drop", drop=rule.params["mode"])

    def on_body(self, op: str | None, path: str, raw: bytes) -> Action | None:
        def wanted(rule: _Rule) -> bool:
            return rule.kind == "reject" and any(n in raw for n in rule.params["needles"])

        with self._lock:
            rule = self._take(wanted, op, path)
        if rule is None:
            return None
        return Action("reject", status=422, body=_error(422, rule.params["message"])[1])

    def after(self, op: str | None, path: str) -> tuple[float, Action | None]:
        """Decide on a processed call: (extra sleep seconds, replacement answer or None)."""
        with self._lock:
            slow = self._take(_is_slow_rule, op, path)
            rule = self._take(_is_after_rule, op, path)
        delay = slow.params["seconds"] if slow is not None else 0.0
        if rule is None:
            return delay, None
        if rule.kind == "drop":
            return delay, Action("drop_after", drop=rule.params["mode"])
        ctype, body = _GARBAGE[rule.params["kind"]]
        return delay, Action("garbage", status=200, body=body, content_type=ctype)


def _is_before_rule(rule: _Rule) -> bool:
    return rule.kind == "fail" or (rule.kind == "drop" and rule.params["when"] == "before")


def _is_slow_rule(rule: _Rule) -> bool:
    return rule.kind == "slow"


def _is_after_rule(rule: _Rule) -> bool:
    return rule.kind == "garbage" or (rule.kind == "drop" and rule.params["when"] == "after")


_UNAUTHORIZED = Action(
    "unauthorized",
    status=401,
    body=b"HTTP Basic: Access denied.\n",
    content_type="text/plain; charset=utf-8",
    headers=(("WWW-Authenticate", 'Basic realm="TRA emulator"'),),
)


def _rx(path: str | None) -> re.Pattern | None:
    return re.compile(path) if path else None


def _fmt_seconds(s: float) -> str:
    return str(int(s)) if float(s).is_integer() else str(s)


# --- HTTP ---------------------------------------------------------------------------------


def _route(method: str, path: str) -> tuple[str, str | None, str | None] | str | None:
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


class _Handler(BaseHTTPRequestHandler):
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
                if not _addressed_to_loopback(headers.get(b"host")):
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
        route, call = _new_call(method, path)
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
            call.fault, call.body = action.name, _parse_for_record(raw)
            if action.drop:
                state.add_call(call)
                self._drop(action.drop)
            else:
                call.status = action.status
                call.error = _message_of(action.body) if (action.status or 500) >= 400 else None
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
        from . import page  # the pages import this module

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
                self._send(404, _error(404, f"no control endpoint {method} {path}")[1])
                return
        except (ValueError, TypeError) as exc:
            self._send(400, _error(400, f"bad control request: {exc}")[1])
            return
        self._send(200, json.dumps(out, default=str).encode())


def _addressed_to_loopback(host: bytes | None) -> bool:
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


def _new_call(method: str, path: str) -> tuple[Any, CallRecord]:
    """The route of an API call (see _route) and its record, not yet answered."""
    route = _route(method, path)
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
        call.body = body if body is not None else _parse_for_record(raw)
        state.add_call(call)
        return status, _error(status, message)[1], "application/json", ()

    if not emu._authorized(headers.get(b"authorization")):
        call.status, call.body = 401, _parse_for_record(raw)
        call.error = "wrong or missing credentials"
        state.add_call(call)
        return 401, _UNAUTHORIZED.body, _UNAUTHORIZED.content_type, _UNAUTHORIZED.headers
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
        status, out = _error(500, "emulator error (see its stderr)")
    call.status = status
    if status >= 400:  # refused by a cross-call rule (unknown run, hook_type): say why
        call.error = _message_of(out)
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


def _message_of(out: bytes) -> str | None:
    try:
        message = json.loads(out).get("message")
    except (ValueError, AttributeError):
        return None
    return message if isinstance(message, str) else None


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)  # NaN/Infinity are not JSON


def _parse_for_record(raw: bytes) -> Any:
    """Best-effort body for the call log: parsed JSON, else the text."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class _HTTPServer(ThreadingHTTPServer):
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
            handler = _Handler.__new__(_Handler)
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
        route, call = _new_call(method, path)
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
            httpd = cls((self.host, self.port), _Handler)
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
