"""What the emulator accepted: builds, test runs, hook runs, log entries and every API call.

Runs in the emulator's process (the tests' process, or ``behave-bstack serve``), written by
whichever thread served a call.  ``EmulatorState.apply`` takes a call that passed
validation (routes.py checked auth, route, JSON and validation.py's rules), applies the
cross-call rules of tra-api.md (ids exist in that build, a finish's ``hook_type`` equals
its start's, log entries and ``hooks[]`` name runs of that build) and records it; it also
writes the JSON answer.  Duplicate finishes are accepted and counted (``finish_count``).
Two build starts with the same project_name + name + non-empty build_run_identifier
share one build id.  One lock guards everything; queries return copies.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from itertools import count as _counter
from typing import Any

__all__ = [
    "BuildRecord",
    "CallRecord",
    "EmulatorState",
    "HookRunRecord",
    "LogRecord",
    "TestRunRecord",
    "error_answer",
]

_OK_MESSAGES = {
    "build_finish": b'{"success": true, "message": "Build finished successfully."}',
    "test_finish": b'{"success": true, "message": "Test run updated successfully."}',
    "hook_finish": b'{"success": true, "message": "Hook run updated successfully."}',
    "logs": b'{"success": true, "message": "Logs added successfully."}',
}


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
            return error_answer(404, f"build {build_id} not found")

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
                return error_answer(422, f"test_run_id: unknown test run {tid} in build {build.id}")
            u = str(uuid.uuid4())
            hrec = HookRunRecord(u, build.id, seq, body)
            self._hooks[u] = hrec
            build.hooks.append(hrec)
            return 200, b'{"success": true, "uuid": "%s"}' % u.encode()
        elif op == "test_finish":
            test = self._run_in(self._tests, run_id, build.id)
            if test is None:
                return error_answer(404, f"test run {run_id} not found in build {build.id}")
            for i, h in enumerate(body.get("hooks") or ()):
                if self._run_in(self._hooks, h, build.id) is None:
                    return error_answer(
                        422, f"hooks[{i}]: unknown hook run {h} in build {build.id}"
                    )
            test.finishes.append(body)
        elif op == "hook_finish":
            hook = self._run_in(self._hooks, run_id, build.id)
            if hook is None:
                return error_answer(404, f"hook run {run_id} not found in build {build.id}")
            if body["hook_type"] != hook.hook_type:
                return error_answer(
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
                return error_answer(422, "; ".join(errs))
            recs = [LogRecord(build.id, seq, e) for e in entries]
            self._logs.extend(recs)
            build.logs.extend(recs)
        return 200, _OK_MESSAGES[op]

    @staticmethod
    def _run_in(table: dict, run_id: object, build_id: str) -> Any:
        rec = table.get(run_id) if isinstance(run_id, str) else None
        return rec if rec is not None and rec.build_id == build_id else None


def error_answer(status: int, message: str) -> tuple[int, bytes]:
    """A refusal as TRA words it: (status, ``{"success": false, "message": ...}``)."""
    return status, json.dumps({"success": False, "message": message}).encode()
