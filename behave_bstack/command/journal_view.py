"""Reading a run's journal for people: `behave-bstack status` (and `show`: show_view.py).

Nothing here sends or writes anything.  A journal is read in bounded pieces, never held
whole: the command's memory does not grow with the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..base.clock import iso_from_epoch_ms
from ..delivery.links import describe
from ..delivery.routes import SENDABLE, build_url
from ..journal import store as journal
from ..journal.acks import OK, UNKNOWN, AckIndex

RUN_OPS = {"test_start": "test", "hook_start": "hook"}
FINISH_OPS = {"test_finish": "test", "hook_finish": "hook"}


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else many or word + 's'}"


def when(epoch_ms: int | None) -> str:
    """Readable UTC time of an epoch-ms stamp (journal drafts keep times that way)."""
    if epoch_ms is None:
        return "unknown time"
    return iso_from_epoch_ms(epoch_ms)[:19].replace("T", " ") + " UTC"


def duration(ms: object) -> str:
    if not isinstance(ms, int) or isinstance(ms, bool):
        return "?"
    return f"{ms} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def first_line(text: object, limit: int = 200) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --------------------------------------------------------------------------- status


@dataclass
class JournalState:
    """The figures of one journal, read from its files (events, acks)."""

    run_dir: Path
    meta: dict = field(default_factory=dict)
    started_ms: int | None = None
    tests: int = 0
    hooks: int = 0
    log_entries: int = 0
    calls: int = 0
    acknowledged: int = 0
    failed: int = 0
    pending: int = 0
    first_failure: str | None = None
    ended: bool = False
    writer_alive: bool = False
    open_runs: int = 0  # started, no finish journaled
    build_finish_journaled: bool = False
    finish_left: bool = False  # another process of the build run finishes the build
    build_id: str | None = None
    last_stop: str | None = None  # why the last delivery stopped (report.json)
    reported_url: str | None = None  # the build link of the last delivery (report.json)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def owns_build(self) -> bool:
        return bool(self.meta.get("owns_build", True))

    @property
    def state(self) -> str:
        if self.ended:
            return "ended"
        return "running" if self.writer_alive else "interrupted"

    @property
    def to_close(self) -> int:
        """Calls `upload` will add to close an interrupted run: a failed finish per open
        test or hook run, and the build's finish if the run owns the build."""
        if self.ended or self.writer_alive:
            return 0
        finish = self.owns_build and not self.build_finish_journaled and not self.finish_left
        return self.open_runs + int(finish)

    @property
    def pending_total(self) -> int:
        """Calls `upload` would send: journaled and unsent, plus those it closes a run with."""
        return self.pending + self.to_close

    @property
    def fully_delivered(self) -> bool:
        """The run ended and the server acknowledged every call."""
        return self.ended and not self.pending and not self.failed

    @property
    def needs_upload(self) -> bool:
        """Something to send, or an interrupted run that delivery still has to close."""
        return bool(self.pending_total)

    @property
    def build_url(self) -> str | None:
        """The build's page: the link the last delivery reported (it knows where it sent),
        else one for the run's API URL (the local server's page when that is loopback)."""
        if not self.build_id:
            return None
        if self.reported_url and self.reported_url.endswith(f"/builds/{self.build_id}"):
            return self.reported_url
        return build_url(self.build_id, self.meta.get("api_url"))


def read_state(run_dir: Path, header=None) -> JournalState:
    """The figures of a journal, read in bounded pieces as journaled (not expanded: that
    needs the feature files' parsing, and nothing here does but the first refusal's name).
    `header`: also collect what `show` prints before the tree (show_view.ShowHeader)."""
    from ..delivery.uploader import writer_alive  # the same test delivery uses

    run_dir = Path(run_dir)
    state = JournalState(run_dir)
    acks = AckIndex(run_dir, keep_ids=False)
    open_runs: set[str] = set()
    first_failed: int | None = None
    for event in journal.iter_records(run_dir / journal.EVENTS):
        if not isinstance(event, dict):
            continue
        op, seq, body = event.get("op"), event.get("seq"), event.get("body") or {}
        stamp = body.get("started_at") if isinstance(body, dict) else None
        if isinstance(stamp, int) and (state.started_ms is None or stamp < state.started_ms):
            state.started_ms = stamp
        if op == "meta":
            state.meta = body
            state.build_id = state.build_id or body.get("build_hashed_id")
        elif op == "end":
            state.ended = True
        elif op == "build_finish_left":
            state.finish_left = True
        if op not in SENDABLE:
            continue
        state.calls += 1
        ref = event.get("ref")
        in_run = op in RUN_OPS or (op in FINISH_OPS and ref in open_runs)
        if op in RUN_OPS:
            state.tests += op == "test_start"
            state.hooks += op == "hook_start"
            open_runs.add(ref)
        elif op in FINISH_OPS:
            open_runs.discard(ref)
        elif op == "logs":
            state.log_entries += len(body.get("logs") or [])
        elif op == "build_finish":
            state.build_finish_journaled = True
        status = acks.status(seq) if isinstance(seq, int) and seq >= 0 else UNKNOWN
        if status == UNKNOWN:
            state.pending += 1
        elif status == OK:
            state.acknowledged += 1
            if op == "build_start" and acks.first and acks.first[0] == seq:
                state.build_id = acks.first[1]
        else:
            state.failed += 1
            if first_failed is None:
                first_failed = seq
            if header is not None and not in_run:
                header.refused.append(f"{op}: {acks.refusal(seq)}")
        if header is not None:
            header.take(op, body)
    state.open_runs = len(open_runs)
    if first_failed is not None:
        state.first_failure = _failure_of(run_dir, first_failed, acks.refusal(first_failed))
    report = journal.read_report(run_dir) or {}
    if report.get("stopped") and (state.pending or not state.ended):
        state.last_stop = str(report["stopped"])
    if isinstance(report.get("build_url"), str):
        state.reported_url = report["build_url"]
    if not state.ended:
        state.writer_alive = writer_alive(state.meta)
    if state.started_ms is None:
        try:
            state.started_ms = int((run_dir / journal.EVENTS).stat().st_mtime * 1000)
        except OSError:
            pass
    return state


def _failure_of(run_dir: Path, seq: int, error: str) -> str:
    """`op ref 'name': error` of the refused event `seq` (expanded: a test's name is in
    its feature file)."""
    for event in journal.iter_events(Path(run_dir) / journal.EVENTS):
        if event.get("seq") == seq:
            return f"{event.get('op')} {describe(event)}: {error}"
    return f"#{seq}: {error}"


def status_line(state: JournalState) -> str:
    refused = f"{state.failed} refused"
    if state.first_failure:
        refused += f" (first: {first_line(state.first_failure)})"
    pending = f"{state.pending_total} pending"
    if state.to_close:
        pending += (
            f" ({plural(state.to_close, 'call')} that `upload` adds to close the interrupted run)"
        )
    parts = [
        f"{state.run_id}  {when(state.started_ms)}  {plural(state.tests, 'test')}, "
        f"{plural(state.hooks, 'hook run')}, "
        f"{plural(state.log_entries, 'log entry', 'log entries')} journaled",
        f"{state.acknowledged}/{plural(state.calls + state.to_close, 'call')} acknowledged, "
        f"{refused}, {pending}",
    ]
    if state.state == "interrupted":
        parts.append("interrupted (behave did not end the run; upload closes it)")
    elif state.state == "running":
        parts.append(f"still running (pid {state.meta.get('pid')})")
    else:
        parts.append("ended")
    if state.last_stop:
        parts.append(f"last delivery stopped: {first_line(state.last_stop)}")
    if state.build_url:
        parts.append(f"build {state.build_url}")
    elif not state.owns_build:
        parts.append("reports into an existing build")
    return "; ".join(parts)


def status_record(state: JournalState) -> dict:
    """status --json: one object per journal."""
    return {
        "run_id": state.run_id,
        "run_dir": str(state.run_dir),
        "started_at": iso_from_epoch_ms(state.started_ms) if state.started_ms else None,
        "tests": state.tests,
        "hook_runs": state.hooks,
        "log_entries": state.log_entries,
        "calls": state.calls + state.to_close,
        "acknowledged": state.acknowledged,
        "refused": state.failed,
        "first_refused": state.first_failure,
        "last_stop": state.last_stop,
        "pending": state.pending_total,
        "to_close": state.to_close,
        "state": state.state,
        "needs_upload": state.needs_upload,
        "build_hashed_id": state.build_id,
        "build_url": state.build_url,
    }


# --------------------------------------------------------------------------- show
# (show_view.py: imported when asked for, it imports this module)


def load_view(run_dir: Path):
    from .show_view import load_view as load

    return load(run_dir)


def render_view(view, with_logs: bool = False) -> Iterator[str]:
    """The lines of `show`, as they are worked out (a huge journal is never held whole)."""
    from .show_view import render_view as render

    return render(view, with_logs)


def latest_run(journal_dir: Path) -> Path | None:
    runs = list(journal.run_directories(journal_dir))
    if not runs:
        return None
    # Run ids start with a UTC timestamp; the events file's mtime breaks ties.
    return max(runs, key=lambda p: (p.name[:15], _mtime(p)))


def _mtime(path: Path) -> float:
    try:
        return os.stat(path / journal.EVENTS).st_mtime
    except OSError:
        return time.time()
