"""Injected misbehaviour: failures, delays, drops, downtime, rate limits, garbage answers.

Runs in the emulator's process (the tests' process, or ``behave-bstack serve``); the
handler threads (handler.py) ask it about each API call, the tests program it
(``srv.faults.<method>(...)``) or a client does over HTTP (``POST /_emulator/faults``,
see ``Faults.apply``).  While no fault is set ``active`` is False and the reactor
(reactor.py) answers calls without asking.

Faults apply to API paths only, never to ``/_emulator/...``. Count-limited faults take
``count`` (None = until cleared) and an optional filter: ``op`` (one of validation.OPS)
and/or ``path`` (a regex searched in the request path); the first matching fault with
calls left is used.

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

Over HTTP (``POST /_emulator/faults``, ``Faults.apply``): a JSON object whose keys are the
method names above and whose values are keyword arguments (an object), several of them
(an array of objects), or the single first argument (e.g.
``{"latency": 50, "fail": {"status": 503, "count": 2}}``).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from .state import error_answer
from .validation import OPS

__all__ = ["UNAUTHORIZED", "Action", "Faults"]

_REASONS = {s.value: s.phrase for s in HTTPStatus}


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
                return lat, UNAUTHORIZED
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
        return Action("reject", status=422, body=error_answer(422, rule.params["message"])[1])

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


# also the answer to wrong credentials (routes.process_call)
UNAUTHORIZED = Action(
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
