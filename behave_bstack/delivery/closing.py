"""Closing runs the writer never closed (the uploader process, and `behave-bstack upload`).

When behave dies (killed, crashed), its journal ends in the middle of the run: tests and
hook runs started and never finished, no build finish, no "end".  Delivery then journals a
failed finish for each of them, a build finish if the run owns the build and no other
process of it still runs, and an "end", so that the journal is complete and is never
closed twice.  RunState is what that needs to know, kept as delivery reads the journal:
small, whatever the run's length (only the runs not yet finished are kept).
"""

from __future__ import annotations

import copy

from ..journal import coordination
from .routes import SENDABLE


class RunState:
    """What the journal has said about the run so far."""

    def __init__(self) -> None:
        self.meta: dict = {}
        self.ended = False  # the writer closed the run (an "end" event)
        self.finish_left = False  # another process of the build run finishes the build
        self.build_finish_journaled = False
        self.open_runs: dict[str, dict] = {}  # ref -> start event, until its finish
        self.max_seq = 0
        self.last_time: int | None = None  # epoch ms of the latest event seen

    def copy(self) -> RunState:
        other = copy.copy(self)
        other.open_runs = dict(self.open_runs)
        return other

    def note(self, record: dict) -> bool:
        """Take one (expanded) record into account; True if it is a call to send."""
        seq, op = record.get("seq"), record.get("op")
        if not isinstance(seq, int):
            return False
        self.max_seq = max(self.max_seq, seq)
        body = record.get("body") or {}
        stamp = body.get("finished_at") or body.get("started_at")
        if isinstance(stamp, int) and (self.last_time is None or stamp > self.last_time):
            self.last_time = stamp
        if op == "meta":
            self.meta = body
            return False
        if op == "end":
            self.ended = True
            return False
        if op == "build_finish_left":
            self.finish_left = True
            return False
        if op not in SENDABLE:
            return False
        if op == "build_finish":
            self.build_finish_journaled = True
        ref = record.get("ref")
        if op in ("test_start", "hook_start") and ref:
            self.open_runs[ref] = record
        elif op in ("test_finish", "hook_finish") and ref:
            self.open_runs.pop(ref, None)
        return True


def closing_records(state: RunState, interrupted_steps, why: str) -> list[dict]:
    """The records that close the run: a failed finish for every test and hook run that
    was started and never finished, a build finish if the run did not write one, and
    "end".  interrupted_steps(ref): the steps a test journaled as finished (Expander)."""
    records = []
    finished_at = state.last_time
    for ref, start in list(state.open_runs.items()):
        body = start.get("body") or {}
        finish = {
            "result": "failed",
            "finished_at": finished_at or body.get("started_at"),
            "file_name": body.get("file_name"),
            "scopes": body.get("scopes"),
            "failure": [{"backtrace": [why]}],
        }
        if start["op"] == "hook_start":
            finish["hook_type"] = body.get("hook_type")
            records.append({"op": "hook_finish", "ref": ref, "body": finish})
            continue
        # What the test had done: its finished steps (journaled as they ended), the rest
        # skipped, and its time up to its last step's end or the journal's last event,
        # whichever is later.
        steps, last_step_end = interrupted_steps(ref)
        if steps:
            finish["meta"] = {"steps": steps}
        started = body.get("started_at")
        ended = max((t for t in (finished_at, last_step_end) if isinstance(t, int)), default=None)
        if isinstance(started, int) and ended is not None:
            finish["finished_at"] = max(ended, started)
            finish["duration_in_ms"] = max(1, ended - started)
        records.append({"op": "test_finish", "ref": ref, "body": finish})
    if (
        not state.build_finish_journaled
        and not state.finish_left
        and state.meta.get("owns_build", True)
        and not _others_still_running(state.meta)
    ):
        records.append({"op": "build_finish", "ref": "build", "body": {"finished_at": finished_at}})
    records.append({"op": "end"})  # the journal is complete now: never closed twice
    return records


def _others_still_running(meta: dict) -> bool:
    shared = meta.get("coordination") or {}
    if not shared.get("dir"):
        return False
    return not coordination.wait_satisfied(shared["dir"], shared.get("outer_pid"))
