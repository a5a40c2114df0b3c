"""Reading a run's journal for people: `behave-bstack status` and `behave-bstack show`.

Nothing here sends or writes anything.  `show` passes every draft through finalize(), the
function delivery uses, so what it prints is what is (or would be) sent.  Local refs
("t12") stand in for the ids that only the server issues.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..base.clock import iso_from_epoch_ms
from ..delivery.dispatch import describe
from ..delivery.finalize import finalize
from ..delivery.routes import SENDABLE, build_url
from ..journal import store as journal

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


def read_state(run_dir: Path) -> JournalState:
    from ..delivery.uploader import writer_alive  # the same test delivery uses

    run_dir = Path(run_dir)
    state = JournalState(run_dir)
    acks = journal.load_acks(run_dir)
    open_runs: set[str] = set()
    for event in journal.read_events(run_dir / journal.EVENTS):
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
        ack = acks.get(seq)
        if ack is None:
            state.pending += 1
        elif ack.get("ok"):
            state.acknowledged += 1
            if op == "build_start" and ack.get("id"):
                state.build_id = ack["id"]
        else:
            state.failed += 1
            if state.first_failure is None:
                state.first_failure = f"{op} {describe(event)}: {ack.get('error') or '?'}"
    state.open_runs = len(open_runs)
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


@dataclass
class RunNode:
    """One test run or hook run, with the bodies that are (or would be) sent."""

    ref: str
    kind: str  # "test" or "hook"
    seq: int
    start: dict
    finish: dict | None = None
    owner: str | None = None  # the test a hook belongs to
    hooks: list[RunNode] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def result(self) -> str:
        if self.finish is None:
            return "not finished"
        return str(self.finish.get("result") or "?")

    @property
    def name(self) -> str:
        return str(self.start.get("name") or self.ref)


@dataclass
class ScopeNode:
    name: str
    seq: int
    entries: list[tuple[int, object]] = field(default_factory=list)  # (seq, RunNode|ScopeNode)
    children: dict[str, ScopeNode] = field(default_factory=dict)

    def child(self, name: str, seq: int) -> ScopeNode:
        node = self.children.get(name)
        if node is None:
            node = self.children[name] = ScopeNode(name, seq)
            self.entries.append((seq, node))
        return node


@dataclass
class RunView:
    state: JournalState
    build: dict | None = None
    finished_ms: int | None = None  # the build finish's time, as journaled
    root: ScopeNode = field(default_factory=lambda: ScopeNode("", 0))
    tests: list[RunNode] = field(default_factory=list)
    hooks: list[RunNode] = field(default_factory=list)
    log_entries: int = 0
    refused: list[str] = field(default_factory=list)  # build calls and logs the server refused


def local_refs(value):
    """A copy of a draft with every {"$ref": x} replaced by x, as delivery replaces it by
    the server's id."""
    if isinstance(value, dict):
        if len(value) == 1 and "$ref" in value:
            return str(value["$ref"])
        return {key: local_refs(item) for key, item in value.items()}
    if isinstance(value, list):
        return [local_refs(item) for item in value]
    return value


def _linked_test(draft: dict) -> str | None:
    link = draft.get("test_run_id")
    return link.get("$ref") if isinstance(link, dict) else None


def load_view(run_dir: Path) -> RunView:
    state = read_state(run_dir)
    view = RunView(state)
    acks = journal.load_acks(run_dir)
    runs: dict[str, RunNode] = {}
    for event in journal.read_events(Path(run_dir) / journal.EVENTS):
        op, seq, ref = event.get("op"), event.get("seq"), event.get("ref")
        if op not in SENDABLE or not isinstance(seq, int):
            continue
        draft = event.get("body") or {}
        body = finalize(op, local_refs(draft))
        ack = acks.get(seq)
        refusal = None if ack is None or ack.get("ok") else f"{op}: {ack.get('error') or '?'}"
        if op == "build_start":
            view.build = body
        elif op == "build_finish" and isinstance(draft.get("finished_at"), int):
            view.finished_ms = draft["finished_at"]
        elif op in RUN_OPS:
            node = RunNode(ref or f"#{seq}", RUN_OPS[op], seq, body, owner=_linked_test(draft))
            runs[node.ref] = node
            (view.tests if node.kind == "test" else view.hooks).append(node)
        elif op in FINISH_OPS and ref in runs:
            runs[ref].finish = body
            for hook_ref in body.get("hooks") or []:
                if hook_ref in runs and runs[hook_ref].owner is None:
                    runs[hook_ref].owner = ref
        elif op == "logs":
            for entry in body.get("logs") or []:
                target = entry.get("test_run_uuid") or entry.get("hook_run_uuid")
                view.log_entries += 1
                if target in runs:
                    runs[target].logs.append(entry)
        if refusal and ref in runs:
            runs[ref].refused.append(refusal)
        elif refusal:
            view.refused.append(refusal)
    _place(view, runs)
    return view


def _place(view: RunView, runs: dict[str, RunNode]) -> None:
    """Tests go under their scopes (feature, rule); hooks under their test, else under the
    deepest scope that holds tests, else at build level (before_all, after_all)."""
    known: set[tuple[str, ...]] = set()
    for test in view.tests:
        scopes = tuple(test.start.get("scopes") or ())
        known.update(scopes[:i] for i in range(1, len(scopes) + 1))
    for node in sorted(runs.values(), key=lambda n: n.seq):
        owner = runs.get(node.owner) if node.owner else None
        if node.kind == "hook" and owner is not None and owner.kind == "test":
            owner.hooks.append(node)
            continue
        scopes = tuple(node.start.get("scopes") or ())
        if node.kind == "hook":
            while scopes and scopes not in known:
                scopes = scopes[:-1]
        scope = view.root
        for name in scopes:
            scope = scope.child(name, node.seq)
        scope.entries.append((node.seq, node))


def _run_line(node: RunNode) -> str:
    finish = node.finish or {}
    result = node.result.upper() if node.result == "failed" else node.result
    text = f"{result}"
    if "duration_in_ms" in finish:
        text += f" ({duration(finish['duration_in_ms'])})"
    return text


def _failure_lines(body: dict | None, limit: int) -> list[str]:
    """The messages of a failure, without its traceback frames (indented lines)."""
    lines: list[str] = []
    for failure in (body or {}).get("failure") or []:
        for line in failure.get("backtrace") or []:
            if str(line).strip() and not str(line)[:1].isspace():
                lines.append(first_line(line))
            if len(lines) >= limit:
                return lines
    return lines


def _render_hook(node: RunNode, pad: str, out: list[str], with_logs: bool) -> None:
    """A hook run, its failure and its own log entries (counted under the hook)."""
    where = node.start.get("location") or node.start.get("file_name") or ""
    out.append(f"{pad}hook {node.name}: {_run_line(node)}" + (f"  [{where}]" if where else ""))
    if node.result == "failed":
        out.extend(f"{pad}  ! {line}" for line in _failure_lines(node.finish, 2))
    out.extend(f"{pad}  ! refused by the server: {why}" for why in node.refused)
    _render_logs(node.logs, pad + "  ", out, with_logs)


def _render_logs(logs: list[dict], pad: str, out: list[str], with_logs: bool) -> None:
    if not logs:
        return
    out.append(f"{pad}{plural(len(logs), 'log entry', 'log entries')}")
    if with_logs:
        for entry in logs:
            level = entry.get("level") or entry.get("kind") or ""
            out.append(f"{pad}  [{level}] {first_line(entry.get('message', ''))}")


def _render_test(node: RunNode, pad: str, out: list[str], with_logs: bool) -> None:
    tags = " ".join(f"@{t}" for t in node.start.get("tags") or [])
    line = f"{pad}Scenario: {node.name} - {_run_line(node)}"
    out.append(line + (f"  {tags}" if tags else ""))
    inner = pad + "  "
    out.extend(f"{inner}! refused by the server: {why}" for why in node.refused)
    hooks_before = [h for h in node.hooks if not str(h.start.get("hook_type")).startswith("after")]
    hooks_after = [h for h in node.hooks if h not in hooks_before]
    for hook in hooks_before:
        _render_hook(hook, inner, out, with_logs)
    steps = ((node.finish or {}).get("meta") or {}).get("steps") or []
    for step in steps:
        text = str(step.get("text") or "").splitlines() or [""]
        result = str(step.get("result") or "?")
        shown = f"{result.upper() if result == 'failed' else result}"
        if "duration" in step:
            shown += f" ({duration(step['duration'])})"
        out.append(f"{inner}{step.get('keyword', '')} {text[0]} - {shown}")
        out.extend(f"{inner}  {extra}" for extra in text[1:])
        if step.get("failure"):
            out.append(f"{inner}  ! {first_line(step['failure'])}")
    if node.result == "failed" and not any(s.get("failure") for s in steps):
        out.extend(f"{inner}! {line}" for line in _failure_lines(node.finish, 2))
    _render_logs(node.logs, inner, out, with_logs)  # the test's own; hooks show theirs
    for hook in hooks_after:
        _render_hook(hook, inner, out, with_logs)


def _render_scope(scope: ScopeNode, depth: int, out: list[str], with_logs: bool) -> None:
    pad = "  " * (depth + 1)
    for _, item in sorted(scope.entries, key=lambda pair: pair[0]):
        if isinstance(item, ScopeNode):
            label = "Feature" if depth == 0 else "Rule"
            out.append(f"{pad}{label}: {item.name}")
            _render_scope(item, depth + 1, out, with_logs)
        elif item.kind == "test":
            _render_test(item, pad, out, with_logs)
        else:
            _render_hook(item, pad, out, with_logs)


def render_view(view: RunView, with_logs: bool = False) -> list[str]:
    state = view.state
    out = [f"Run {state.run_id} ({state.run_dir})"]
    build = view.build
    if build is not None:
        line = f"Build {build.get('name')!r} in project {build.get('project_name')!r}"
    elif not state.owns_build:
        line = f"Reports into the existing build {state.build_id}"
    else:
        line = "Build (no build start journaled)"
    line += f", started {when(state.started_ms)}"
    if view.finished_ms is None:
        line += ", not finished"
    elif state.started_ms is not None:
        line += f", finished after {duration(view.finished_ms - state.started_ms)}"
    out.append(line)
    if state.build_url:
        out.append(f"  build: {state.build_url}")
    elif state.owns_build:
        out.append("  build: not created yet (nothing delivered; see `behave-bstack upload`)")
    out.append(
        f"  journal: {plural(state.calls + state.to_close, 'call')}: "
        f"{state.acknowledged} acknowledged, {state.failed} refused, "
        f"{state.pending_total} pending; run {state.state}"
    )
    out.extend(f"  ! refused by the server: {why}" for why in view.refused)
    _render_scope(view.root, 0, out, with_logs)
    out.extend(_totals(view))
    return out


def _tally(nodes: list[RunNode]) -> str:
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.result] = counts.get(node.result, 0) + 1
    return ", ".join(f"{n} {result}" for result, n in sorted(counts.items())) or "none"


def _totals(view: RunView) -> list[str]:
    out = [
        "",
        f"{plural(len(view.tests), 'test')} ({_tally(view.tests)}); "
        f"{plural(len(view.hooks), 'hook run')} ({_tally(view.hooks)}); "
        f"{plural(view.log_entries, 'log entry', 'log entries')}",
    ]
    failed = [n for n in view.tests + view.hooks if n.result == "failed"]
    if failed:
        out.append(f"Failures ({len(failed)}):")
        for node in sorted(failed, key=lambda n: n.seq):
            label = "Scenario" if node.kind == "test" else "hook"
            where = node.start.get("location") or node.start.get("file_name") or ""
            out.append(f"  {label} {node.name}" + (f" ({where})" if where else ""))
            out.extend(f"    {line}" for line in _failure_lines(node.finish, 3))
    return out


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
