"""`behave-bstack show`: a run from its journal, as a tree (the command's process).

Every draft passes through finalize(), the function delivery uses, so what is printed is
what is (or would be) sent; local refs ("t12") stand in for the ids that only the server
issues.  The output streams: the journal is read twice in bounded pieces (once for the
figures and the build, which come first, then for the tree), and the tree is printed one
feature at a time, so that memory holds one feature's tests, not the run's.  A feature's
block ends when a test of another feature starts; a feature whose tests come in several
places of the journal (never in one behave process's run) is printed once per place.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..delivery.finalize import finalize
from ..delivery.routes import SENDABLE
from ..journal import store as journal
from ..journal.acks import OK, UNKNOWN, AckIndex
from .journal_view import JournalState, duration, first_line, plural, read_state, when

RUN_OPS = {"test_start": "test", "hook_start": "hook"}
FINISH_OPS = {"test_finish": "test", "hook_finish": "hook"}
# What the tree prints of a run's bodies (the rest, such as the scenario's code, is let go).
START_KEYS = ("name", "tags", "location", "file_name", "scopes", "hook_type")
FINISH_KEYS = ("result", "duration_in_ms", "failure", "hooks")
STEP_KEYS = ("keyword", "text", "result", "duration", "failure")


@dataclass
class RunNode:
    """One test run or hook run, with what is printed of its bodies."""

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
class ShowHeader:
    """What is printed before the tree: the build, when it finished, and the refused calls
    that belong to no test or hook run (build calls, logs).  Collected by read_state."""

    build: dict | None = None
    finished_ms: int | None = None  # the build finish's time, as journaled
    refused: list[str] = field(default_factory=list)

    def take(self, op: str, draft: dict) -> None:
        if op == "build_start" and isinstance(draft, dict):
            self.build = finalize(op, local_refs(draft))
        elif op == "build_finish" and isinstance(draft.get("finished_at"), int):
            self.finished_ms = draft["finished_at"]


@dataclass
class RunView:
    state: JournalState
    header: ShowHeader

    @property
    def build(self) -> dict | None:
        return self.header.build

    @property
    def finished_ms(self) -> int | None:
        return self.header.finished_ms

    @property
    def refused(self) -> list[str]:
        return self.header.refused


@dataclass
class Totals:
    """The figures printed after the tree, counted as the tree is printed."""

    tests: dict[str, int] = field(default_factory=dict)  # result -> count
    hooks: dict[str, int] = field(default_factory=dict)
    log_entries: int = 0
    failures: list[str] = field(default_factory=list)  # their lines, ready to print
    failed: int = 0

    def count(self, node: RunNode) -> None:
        tally = self.tests if node.kind == "test" else self.hooks
        tally[node.result] = tally.get(node.result, 0) + 1
        if node.result == "failed":
            self.failed += 1
            label = "Scenario" if node.kind == "test" else "hook"
            where = node.start.get("location") or node.start.get("file_name") or ""
            self.failures.append(f"  {label} {node.name}" + (f" ({where})" if where else ""))
            self.failures.extend(f"    {line}" for line in _failure_lines(node.finish, 3))


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


def _slim_start(body: dict) -> dict:
    return {key: body[key] for key in START_KEYS if key in body}


def _slim_finish(body: dict) -> dict:
    slim = {key: body[key] for key in FINISH_KEYS if key in body}
    steps = (body.get("meta") or {}).get("steps")
    if steps:
        slim["meta"] = {"steps": [{k: s[k] for k in STEP_KEYS if k in s} for s in steps]}
    return slim


def load_view(run_dir: Path) -> RunView:
    """The figures and the header; the tree is read as it is printed (render_view)."""
    header = ShowHeader()
    return RunView(read_state(run_dir, header), header)


def render_view(view: RunView, with_logs: bool = False) -> Iterator[str]:
    state = view.state
    yield f"Run {state.run_id} ({state.run_dir})"
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
    yield line
    if state.build_url:
        yield f"  build: {state.build_url}"
    elif state.owns_build:
        yield "  build: not created yet (nothing delivered; see `behave-bstack upload`)"
    yield (
        f"  journal: {plural(state.calls + state.to_close, 'call')}: "
        f"{state.acknowledged} acknowledged, {state.failed} refused, "
        f"{state.pending_total} pending; run {state.state}"
    )
    yield from (f"  ! refused by the server: {why}" for why in view.refused)
    totals = Totals()
    yield from _tree(state.run_dir, totals, with_logs)
    yield from _totals(totals)


def _tree(run_dir: Path, totals: Totals, with_logs: bool) -> Iterator[str]:
    """The tree, one block (a feature's tests, with the hooks around them) at a time."""
    acks = AckIndex(run_dir, keep_ids=False)
    runs: dict[str, RunNode] = {}  # the runs of the block being read
    known: set[tuple[str, ...]] = set()  # scopes that hold tests, so far
    top: tuple[str, ...] | None = None  # the feature of the block being read
    for event in journal.iter_events(Path(run_dir) / journal.EVENTS):
        op, seq, ref = event.get("op"), event.get("seq"), event.get("ref")
        if op not in SENDABLE or not isinstance(seq, int):
            continue
        draft = event.get("body") or {}
        if op in RUN_OPS:
            body = finalize(op, local_refs(draft))
            node = RunNode(ref or f"#{seq}", RUN_OPS[op], seq, _slim_start(body))
            node.owner = _linked_test(draft)
            if node.kind == "test":
                scopes = tuple(body.get("scopes") or ())
                if top is not None and _starts_block(scopes, top):
                    # A test of another feature: the block before it is complete, but for
                    # hooks of the new feature (its before_feature) that it holds.
                    later = {
                        r: n for r, n in runs.items() if _top_of(n) == scopes[:1] and not n.owner
                    }
                    known.update(scopes[:i] for i in range(1, len(scopes) + 1))
                    yield from _flush(
                        [n for r, n in runs.items() if r not in later], known, totals, with_logs
                    )
                    runs = later
                known.update(scopes[:i] for i in range(1, len(scopes) + 1))
                top = scopes[:1]
            runs[node.ref] = node
        elif op in FINISH_OPS and ref in runs:
            runs[ref].finish = _slim_finish(finalize(op, local_refs(draft)))
            for hook_ref in runs[ref].finish.get("hooks") or []:
                if hook_ref in runs and runs[hook_ref].owner is None:
                    runs[hook_ref].owner = ref
        elif op == "logs":
            for entry in finalize(op, local_refs(draft)).get("logs") or []:
                target = entry.get("test_run_uuid") or entry.get("hook_run_uuid")
                totals.log_entries += 1
                if target in runs:
                    runs[target].logs.append(entry)
        status = acks.status(seq)
        if status not in (UNKNOWN, OK) and ref in runs:
            runs[ref].refused.append(f"{op}: {acks.refusal(seq)}")
    yield from _flush(list(runs.values()), known, totals, with_logs)


def _starts_block(scopes: tuple[str, ...], top: tuple[str, ...]) -> bool:
    """Does a test with these scopes end the block of the feature `top`?"""
    return scopes[:1] != top


def _top_of(node: RunNode) -> tuple[str, ...]:
    return tuple(node.start.get("scopes") or ())[:1]


def _flush(nodes: list[RunNode], known: set, totals: Totals, with_logs: bool) -> Iterator[str]:
    root = ScopeNode("", 0)
    _place(root, {node.ref: node for node in nodes}, known)
    for node in sorted(nodes, key=lambda n: n.seq):
        totals.count(node)
    out: list[str] = []
    _render_scope(root, 0, out, with_logs)
    return iter(out)


def _place(root: ScopeNode, runs: dict[str, RunNode], known: set) -> None:
    """Tests go under their scopes (feature, rule); hooks under their test, else under the
    deepest scope that holds tests, else at build level (before_all, after_all)."""
    for node in sorted(runs.values(), key=lambda n: n.seq):
        owner = runs.get(node.owner) if node.owner else None
        if node.kind == "hook" and owner is not None and owner.kind == "test":
            owner.hooks.append(node)
            continue
        scopes = tuple(node.start.get("scopes") or ())
        if node.kind == "hook":
            while scopes and scopes not in known:
                scopes = scopes[:-1]
        scope = root
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


def _tally(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {result}" for result, n in sorted(counts.items())) or "none"


def _totals(totals: Totals) -> Iterator[str]:
    yield ""
    yield (
        f"{plural(sum(totals.tests.values()), 'test')} ({_tally(totals.tests)}); "
        f"{plural(sum(totals.hooks.values()), 'hook run')} ({_tally(totals.hooks)}); "
        f"{plural(totals.log_entries, 'log entry', 'log entries')}"
    )
    if totals.failed:
        yield f"Failures ({totals.failed}):"
        yield from totals.failures
