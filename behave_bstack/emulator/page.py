"""The emulator's pages: what it received, grouped the way TRA shows a build.

``GET /`` lists the builds (and the calls it refused); ``GET /builds/<build_hashed_id>``
shows one build: its tests grouped by their ``scopes`` (feature, then rule), each with its
result, duration, failure, steps, hook runs and log entries, then the hook runs that belong
to no test.  Plain server-rendered HTML, no script and no external asset; everything that
came from a client is escaped, and the Content-Security-Policy forbids scripts besides.
The raw record stays at ``GET /_emulator/state?calls=1`` (JSON).
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .state import BuildRecord, CallRecord, EmulatorState, HookRunRecord, LogRecord, TestRunRecord

__all__ = ["CONTENT_TYPE", "HEADERS", "render"]

CONTENT_TYPE = "text/html; charset=utf-8"
HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
)
_RECENT_REFUSALS = 50

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2530;background:#f6f7f9}
header{background:#1d2530;color:#fff;padding:8px 20px}header a{color:#cfe3ff;margin-right:16px}
main{padding:12px 20px 40px;max-width:1200px}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:18px 0 6px}h3{font-size:16px;margin:12px 0 6px}
h4{font-size:13px;margin:10px 0 4px;color:#4a5563;text-transform:uppercase;letter-spacing:.04em}
table{border-collapse:collapse;background:#fff;margin:4px 0}
th,td{border:1px solid #dde1e6;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:6px 0}
dl.meta dt{color:#4a5563}dl.meta dd{margin:0}
.scope{border-left:3px solid #c9d1db;padding-left:12px;margin:8px 0}
details.test,details.hook{background:#fff;border:1px solid #dde1e6;border-radius:4px;margin:6px 0}
details>summary{cursor:pointer;padding:5px 8px}details>div{padding:2px 12px 10px}
.badge{display:inline-block;min-width:56px;text-align:center;border-radius:3px;padding:0 6px;
font-size:12px;font-weight:600;color:#fff;background:#6b7785}
.badge.passed{background:#1f8a4c}.badge.failed,.badge.timeout{background:#c62828}
.badge.skipped{background:#9aa3ad}.badge.pending{background:#b26a00}
tr.failed td,tr.timeout td{background:#fdecea}
.name{font-weight:600}.muted,.loc,.dur{color:#5c6773;font-size:12px;margin-left:8px}
.tag{color:#33558c;font-size:12px;margin-left:4px}
pre{background:#fbf3f2;border:1px solid #f0c9c5;padding:6px 8px;white-space:pre-wrap;
word-break:break-word;margin:4px 0;font-size:12px}
pre.code{background:#f3f5f8;border-color:#dde1e6}
ul.logs{list-style:none;padding:0;margin:4px 0;font:12px/1.4 ui-monospace,monospace}
ul.logs li{border-bottom:1px solid #eef0f3;padding:1px 0;white-space:pre-wrap}
.level{font-weight:600;margin:0 6px}.kind{color:#5c6773}
.counts span{margin-right:12px}
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


# --- a consistent copy of what one build received -----------------------------------------


@dataclass
class _Run:
    """A test or hook run as last finished (finish None: never finished)."""

    record: Any
    start: dict
    finish: dict | None
    finish_count: int
    logs: list[dict] = field(default_factory=list)
    hooks: list[_Run] = field(default_factory=list)

    @property
    def uuid(self) -> str:
        return self.record.uuid

    @property
    def result(self) -> str:
        if self.finish is None:
            return "pending"
        return str(self.finish.get("result") or "?")


@dataclass
class _BuildView:
    build: BuildRecord
    starts: list[dict]
    finishes: list[dict]
    tests: list[_Run]
    loose_hooks: list[_Run]  # hook runs that belong to no test
    refused: list[CallRecord]  # calls for this build it refused or left unanswered


def _snapshot(state: EmulatorState, build_id: str) -> _BuildView | None:
    with state.lock:  # records only grow; copy the lists under the lock, render outside
        build = state._builds.get(build_id)
        if build is None:
            return None
        starts, finishes = list(build.starts), list(build.finishes)
        tests = sorted((_run(t) for t in build.tests), key=_started)
        hooks = sorted((_run(h) for h in build.hooks), key=_started)
        logs: list[LogRecord] = list(build.logs)
        refused = [
            c
            for c in state._calls
            if c.build_id == build_id and (c.status is None or c.status >= 400)
        ]
    by_uuid = {r.uuid: r for r in (*tests, *hooks)}
    for log in logs:
        owner = by_uuid.get(log.entry.get("test_run_uuid") or log.entry.get("hook_run_uuid"))
        if owner is not None:
            owner.logs.append(log.entry)
    tests_by_uuid = {t.uuid: t for t in tests}
    claimed: set[str] = set()
    for test in tests:  # a test's hooks: those it names in its finish, and those naming it
        for hook_id in (test.finish or {}).get("hooks") or ():
            if hook_id in by_uuid and hook_id not in claimed and hook_id not in tests_by_uuid:
                test.hooks.append(by_uuid[hook_id])
                claimed.add(hook_id)
    for hook in hooks:
        owner = tests_by_uuid.get(hook.start.get("test_run_id"))
        if owner is not None and hook.uuid not in claimed:
            owner.hooks.append(hook)
            claimed.add(hook.uuid)
    for test in tests:  # stable: hooks that started in the same millisecond keep the
        test.hooks.sort(key=lambda h: str(h.start.get("started_at") or ""))  # test's order
    loose = [h for h in hooks if h.uuid not in claimed]
    return _BuildView(build, starts, finishes, tests, loose, refused)


def _started(run: _Run) -> tuple[str, int]:
    """Runs in the order they started (calls arrive in any order from concurrent senders)."""
    return str(run.start.get("started_at") or ""), run.record.seq


def _run(record: TestRunRecord | HookRunRecord) -> _Run:
    finishes = record.finishes
    return _Run(record, record.start, finishes[-1] if finishes else None, len(finishes))


# --- rendering ----------------------------------------------------------------------------


def render(state: EmulatorState, path: str, base_url: str) -> tuple[int, bytes]:
    """(status, HTML) for a GET of ``path`` that is not an API or control path."""
    if path in ("/", "/builds", "/builds/"):
        return 200, _index(state, base_url)
    if path.startswith("/builds/"):
        build_id = path[len("/builds/") :].strip("/")
        view = _snapshot(state, build_id) if "/" not in build_id else None
        if view is not None:
            return 200, _build_page(view)
        return 404, _page(
            "Unknown build",
            f"<h1>No build {esc(build_id)}</h1><p>This emulator has received no build with "
            f'that id since it started (or since its last reset). <a href="/">All builds</a></p>',
        )
    return 404, _page(
        "Not found",
        f"<h1>Nothing at {esc(path)}</h1><p>The API lives under <code>/ext/v1/</code>; "
        f'what it received is at <a href="/">/</a>.</p>',
    )


def _page(title: str, body: str) -> bytes:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} · TRA emulator</title><style>{_CSS}</style></head><body>"
        '<header><a href="/">TRA emulator: builds</a>'
        '<a href="/_emulator/state?calls=1">what it received (JSON)</a></header>'
        f"<main>{body}</main></body></html>"
    ).encode("utf-8", "replace")  # a lone surrogate must not cost the page


def _counts(results: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        counts[result] = counts.get(result, 0) + 1
    return counts


def _counts_html(counts: dict[str, int]) -> str:
    order = ["passed", "failed", "timeout", "skipped", "pending"]
    keys = [k for k in order if k in counts] + sorted(k for k in counts if k not in order)
    return " ".join(f'<span class="badge {esc(k)}">{counts[k]} {esc(k)}</span>' for k in keys)


def _index(state: EmulatorState, base_url: str) -> bytes:
    with state.lock:
        builds = [
            (b, list(b.starts), len(b.finishes), [_run(t).result for t in b.tests])
            for b in state._builds.values()
        ]
        hook_counts = {b.id: len(b.hooks) for b in state._builds.values()}
        log_counts = {b.id: len(b.logs) for b in state._builds.values()}
        calls: list[CallRecord] = list(state._calls)
    parts = ["<h1>Builds received</h1>"]
    if not builds:
        parts.append(
            "<p>None yet. To report a behave run here:</p>"
            f"<pre class=code>export BROWSERSTACK_API_URL={esc(base_url)}\n"
            "behave -f behave_bstack:BstackFormatter</pre>"
        )
    else:
        parts.append(
            "<table class=builds><tr><th>build</th><th>project</th><th>started</th>"
            "<th>finished</th><th>tests</th><th>hook runs</th><th>log entries</th></tr>"
        )
        for build, starts, finish_count, results in reversed(builds):
            start = starts[0]
            parts.append(
                f'<tr><td><a href="/builds/{quote(build.id)}">{esc(start.get("name"))}</a>'
                f'<div class="muted">{esc(build.id)}</div></td>'
                f"<td>{esc(start.get('project_name'))}</td><td>{esc(start.get('started_at'))}</td>"
                f"<td>{'yes' if finish_count else 'not yet'}</td>"
                f'<td class="counts">{len(results)}: {_counts_html(_counts(results))}</td>'
                f"<td>{hook_counts[build.id]}</td><td>{log_counts[build.id]}</td></tr>"
            )
        parts.append("</table>")
    refused = [c for c in calls if c.status is None or c.status >= 400]
    parts.append(
        f"<h2>Calls</h2><p>{len(calls)} API calls received, {len(refused)} of them refused "
        "or left unanswered. The full record, bodies included: "
        '<a href="/_emulator/state?calls=1">/_emulator/state?calls=1</a>.</p>'
    )
    if refused:
        shown = refused[-_RECENT_REFUSALS:]
        parts.append("<h3>Refused, the latest first</h3>" + _calls_table(shown))
    return _page("Builds", "".join(parts))


def _calls_table(calls: list[CallRecord]) -> str:
    """Refused calls, the latest first, with the answer and why."""
    parts = [
        "<table class=refused><tr><th>#</th><th>time</th><th>call</th><th>answer</th>"
        "<th>why</th></tr>"
    ]
    for call in reversed(calls):
        answer = "no answer" if call.status is None else call.status
        why = call.error or ""
        if call.fault:
            why = f"{why} (fault: {call.fault})".strip()
        parts.append(
            f'<tr class="failed"><td>{call.seq}</td><td>{_clock(call.time)}</td>'
            f"<td>{esc(call.method)} {esc(call.path)}</td><td>{esc(answer)}</td>"
            f"<td>{esc(why)}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}"


def _build_page(view: _BuildView) -> bytes:
    start = view.starts[0]
    parts = [f"<h1>{esc(start.get('name'))}</h1>", "<dl class=meta>"]

    def row(label: str, value: object) -> None:
        if value not in (None, "", [], {}):
            parts.append(f"<dt>{esc(label)}</dt><dd>{value}</dd>")

    row("project", esc(start.get("project_name")))
    row("build id", esc(view.build.id))
    row("started", esc(start.get("started_at")))
    if view.finishes:
        row("finished", esc(view.finishes[-1].get("finished_at")))
        if len(view.finishes) > 1:
            row("finish calls", len(view.finishes))
    else:
        row("finished", "not yet (no finish call)")
    if len(view.starts) > 1:
        row("build starts", f"{len(view.starts)} (runs merged by build_run_identifier)")
    row("run identifier", esc(start.get("build_run_identifier")))
    row("tags", " ".join(f'<span class="tag">{esc(t)}</span>' for t in start.get("tags") or ()))
    framework = start.get("framework") or {}
    if framework:
        row("framework", esc(f"{framework.get('name')} {framework.get('version')}"))
    for key in ("host_info", "ci_info", "version_control"):
        value = start.get(key)
        if isinstance(value, dict) and value:
            row(key, esc(", ".join(f"{k}: {v}" for k, v in value.items())))
    parts.append("</dl>")
    results = [t.result for t in view.tests]
    hook_count = len(view.loose_hooks) + sum(len(t.hooks) for t in view.tests)
    log_count = sum(len(r.logs) for r in view.tests) + sum(
        len(h.logs) for r in view.tests for h in r.hooks
    )
    log_count += sum(len(h.logs) for h in view.loose_hooks)
    parts.append(
        f'<p class="counts">{len(results)} tests: {_counts_html(_counts(results))} '
        f"{hook_count} hook runs, {log_count} log entries. "
        f'<a href="/_emulator/state?calls=1">The calls as received (JSON)</a></p>'
    )
    parts.append("<h2>Tests</h2>")
    if not view.tests:
        parts.append("<p>No test runs.</p>")
    parts.append(_scope_tree(view.tests, depth=0))
    if view.loose_hooks:
        parts.append(
            "<h2>Hook runs outside tests</h2><p class=muted>before_all, before_feature and "
            "the like: hook runs that no test names.</p>"
        )
        parts.append(_hook_table(view.loose_hooks, with_scope=True))
    if view.refused:
        n = len(view.refused)
        calls = "1 call for this build was" if n == 1 else f"{n} calls for this build were"
        parts.append(
            f"<h2>Calls refused</h2><p class=muted>{calls} refused or left unanswered; what "
            "they carried is not shown above.</p>"
        )
        parts.append(_calls_table(view.refused[-_RECENT_REFUSALS:]))
    return _page(str(start.get("name")), "".join(parts))


def _scope_tree(tests: list[_Run], depth: int) -> str:
    """Tests grouped by scopes[depth], in the order each scope first appears."""
    here = [t for t in tests if len(_scopes(t)) <= depth]
    groups: dict[str, list[_Run]] = {}
    for test in tests:
        scopes = _scopes(test)
        if len(scopes) > depth:
            groups.setdefault(scopes[depth], []).append(test)
    parts = [_test(t) for t in here]
    heading = "h2" if depth == 0 else "h3"
    for scope, members in groups.items():
        counts = _counts_html(_counts(t.result for t in members))
        parts.append(
            f'<section class="scope"><{heading}>{esc(scope)} '
            f'<span class="counts muted">{counts}</span></{heading}>'
            f"{_scope_tree(members, depth + 1)}</section>"
        )
    return "".join(parts)


def _scopes(run: _Run) -> list[str]:
    scopes = (run.finish or {}).get("scopes") or run.start.get("scopes") or []
    return [str(s) for s in scopes]


def _badge(result: str) -> str:
    label = "not finished" if result == "pending" else result
    return f'<span class="badge {esc(result)}">{esc(label)}</span>'


def _duration(finish: dict | None) -> str:
    ms = (finish or {}).get("duration_in_ms")
    return f'<span class="dur">{esc(ms)} ms</span>' if ms is not None else ""


def _failure(finish: dict | None) -> str:
    failures = (finish or {}).get("failure") or []
    texts = [
        "\n".join(str(line) for line in (f.get("backtrace") or []))
        for f in failures
        if isinstance(f, dict)
    ]
    return "".join(f'<pre class="failure">{esc(text)}</pre>' for text in texts if text)


def _test(test: _Run) -> str:
    start, finish = test.start, test.finish
    tags = "".join(f'<span class="tag">@{esc(t)}</span>' for t in start.get("tags") or ())
    opened = " open" if test.result in ("failed", "timeout", "pending") else ""
    parts = [
        f'<details class="test" id="test-{esc(test.uuid)}"{opened}><summary>'
        f'{_badge(test.result)} <span class="name">{esc(start.get("name"))}</span>'
        f"{_duration(finish)}"
        f'<span class="loc">{esc(start.get("location") or start.get("file_name"))}</span>'
        f"{tags}</summary><div>"
    ]
    if test.finish_count > 1:
        parts.append(f"<p class=muted>finished {test.finish_count} times; the last is shown</p>")
    failure = _failure(finish)
    if failure:
        parts.append(f"<h4>Failure</h4>{failure}")
    steps = ((finish or {}).get("meta") or {}).get("steps") or []
    if steps:
        parts.append(
            "<h4>Steps</h4><table class=steps><tr><th>step</th><th>result</th><th>ms</th></tr>"
        )
        for step in steps:
            result = str(step.get("result") or "")
            failed = step.get("failure")
            parts.append(
                f'<tr class="{esc(result)}"><td><b>{esc(step.get("keyword"))}</b> '
                f"{esc(step.get('text'))}"
                + (f'<pre class="failure">{esc(failed)}</pre>' if failed else "")
                + f"</td><td>{_badge(result) if result else ''}</td>"
                f"<td>{esc(step.get('duration', ''))}</td></tr>"
            )
        parts.append("</table>")
    if test.hooks:
        parts.append("<h4>Hooks</h4>" + _hook_table(test.hooks, with_scope=False))
    if test.logs:
        parts.append("<h4>Logs</h4>" + _logs(test.logs))
    extras = []
    for key in ("environment", "custom_metadata"):
        value = {**(start.get(key) or {}), **((finish or {}).get(key) or {})}
        if value:
            extras.append((key, value))
    for key, value in extras:
        shown = ", ".join(f"{k}: {v}" for k, v in value.items())
        parts.append(f"<h4>{esc(key)}</h4><p>{esc(shown)}</p>")
    code = (start.get("body") or {}).get("code")
    if code:
        parts.append(f'<h4>Source</h4><pre class="code">{esc(code)}</pre>')
    parts.append("</div></details>")
    return "".join(parts)


def _hook_table(hooks: list[_Run], with_scope: bool) -> str:
    scope_head = "<th>scope</th>" if with_scope else ""
    parts = [
        f"<table class=hooks><tr><th>type</th><th>name</th>{scope_head}<th>result</th>"
        "<th>ms</th><th>failure, logs</th></tr>"
    ]
    for hook in hooks:
        finish = hook.finish
        scope = f"<td>{esc(' › '.join(_scopes(hook)))}</td>" if with_scope else ""
        detail = _failure(finish) + (_logs(hook.logs) if hook.logs else "")
        parts.append(
            f'<tr class="{esc(hook.result)}" id="hook-{esc(hook.uuid)}">'
            f"<td>{esc(hook.start.get('hook_type'))}</td><td>{esc(hook.start.get('name'))}</td>"
            f"{scope}<td>{_badge(hook.result)}</td>"
            f"<td>{esc((finish or {}).get('duration_in_ms', ''))}</td><td>{detail}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)


def _logs(entries: list[dict]) -> str:
    items = []
    for entry in sorted(entries, key=lambda e: str(e.get("timestamp") or "")):
        stamp = str(entry.get("timestamp") or "")
        message = entry.get("message")
        if message is None and entry.get("file_name"):
            message = f"{entry.get('file_name')} ({entry.get('file_size', '?')} bytes)"
        if message is None and isinstance(entry.get("http_response"), dict):
            message = str(entry["http_response"])
        items.append(
            f"<li><time>{esc(stamp[11:23] or stamp)}</time>"
            f'<span class="level">{esc(entry.get("level") or "")}</span>'
            f'<span class="kind">{esc(entry.get("kind"))}</span> {esc(message)}</li>'
        )
    return '<ul class="logs">' + "".join(items) + "</ul>"
