"""One line per API call, as ``behave-bstack serve`` prints them.

    17:29:57.895 200 test_start   build edb0534a "A deliberately wrong total"
    17:29:57.898 200 test_finish  build edb0534a failed "A deliberately wrong total"
    17:29:58.120 422 test_start   build edb0534a "x" - file_name: required; scopes: required
    17:29:58.300 --- logs         build edb0534a 3 entries (no answer: fault drop)

Time (local), the status sent (``---``: none), the operation (or method and path when
the path is no API route), the build, what the call was about, and why it was refused.
"""

from __future__ import annotations

import time
from typing import Any

from .state import CallRecord, EmulatorState

_MAX_DETAIL = 160


def call_line(call: CallRecord, state: EmulatorState | None = None) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(call.time))
    stamp += f".{int(call.time * 1000) % 1000:03d}"
    status = "---" if call.status is None else str(call.status)
    what = call.op or f"{call.method} {call.path}"
    parts = [stamp, status, f"{what:<12}"]
    if call.build_id:
        parts.append(f"build {call.build_id[:8]}")
    detail = _detail(call, state)
    if detail:
        parts.append(_clip(detail))
    line = " ".join(parts)
    if call.error:
        line += f" - {_clip(call.error)}"
    if call.fault:
        answered = call.status is not None
        line += f" (fault: {call.fault})" if answered else f" (no answer: fault {call.fault})"
    elif call.status is None:
        line += " (no answer)"
    return line


def _detail(call: CallRecord, state: EmulatorState | None) -> str:
    body: Any = call.body
    if not isinstance(body, dict):
        return ""
    op = call.op
    if op in ("build_start", "test_start", "hook_start"):
        name = body.get("name")
        return _quote(name) if name is not None else ""
    if op == "logs":
        entries = body.get("logs")
        return f"{len(entries)} entries" if isinstance(entries, list) else ""
    if op in ("test_finish", "hook_finish"):
        result = body.get("result")
        name = _run_name(state, call.path.rsplit("/", 2)[-2]) if state is not None else None
        return " ".join(p for p in (str(result) if result else "", _quote(name)) if p)
    return ""


def _run_name(state: EmulatorState, run_id: str) -> str | None:
    record = state._tests.get(run_id) or state._hooks.get(run_id)  # a dict read: no lock
    return record.start.get("name") if record is not None else None


def _quote(text: object) -> str:
    return "" if text is None else '"' + str(text).replace("\n", " ") + '"'


def _clip(text: str) -> str:
    """One line, no terminal control characters (names come from clients), not too long."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text.replace("\n", " "))
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
