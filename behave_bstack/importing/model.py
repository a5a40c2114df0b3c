"""What every report format is read into, and how it is journaled.

Runs in the `behave-bstack import` process.  A format's reader (messages.py,
cucumber_json.py, behave_json.py) turns its report into Test and Hook objects, one at a
time, and hands each to a ReportWriter as soon as it is complete: nothing else of the
report is kept, so memory stays flat however many test cases it has.  The writer journals
them in the journal's full form (store.py, drafts.py: times as epoch ms, nothing trimmed;
delivery fits them to the API's limits when it sends them), exactly the events a live run
journals for a test: its start, its hook runs (linked to it) with their logs, its own logs,
its finish with meta.steps and the uuids of its hooks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..description import mapping
from ..journal import entries
from ..journal import store as journal

LOGS_PER_CALL = 500  # the API's limit per logs call

# Cucumber's status -> TRA result (of a step, a hook, and by the worst of them, a test):
# what does not pass or skip fails, UNKNOWN included (never passed).
STATUS_RESULTS = {
    "PASSED": "passed",
    "SKIPPED": "skipped",
    "PENDING": "failed",
    "UNDEFINED": "failed",
    "AMBIGUOUS": "failed",
    "FAILED": "failed",
    "UNKNOWN": "failed",
}


def cucumber_test_result(statuses: list[str]) -> str:
    """A test's result from its steps' and hooks' Cucumber statuses."""
    results = [STATUS_RESULTS.get(s.upper(), "failed") for s in statuses]
    if "failed" in results:
        return "failed"
    return "skipped" if "skipped" in results else "passed"


@dataclass
class Step:
    keyword: str
    text: str
    result: str  # passed, failed or skipped (TRA's)
    started_at: int | None = None  # epoch ms; None for a step that never ran
    finished_at: int | None = None
    failure: str | None = None


@dataclass
class Log:
    """A text entry (data None) or an attachment (its bytes in data)."""

    timestamp: int
    message: str = ""
    level: str = "INFO"
    data: bytes | None = None
    name: str | None = None
    mime_type: str = "application/octet-stream"


@dataclass
class Hook:
    hook_type: str
    name: str
    file_name: str
    scopes: list[str]
    started_at: int
    finished_at: int
    result: str = "passed"
    location: str | None = None
    failure: list[str] | None = None  # backtrace lines
    logs: list[Log] = field(default_factory=list)


@dataclass
class Test:
    name: str
    file_name: str
    location: str
    scopes: list[str]
    tags: list[str]
    started_at: int
    finished_at: int
    steps: list[Step] = field(default_factory=list)
    code: str | None = None
    vc_filepath: str | None = None
    result: str | None = None  # None: from the steps and hooks (derive_result)
    failures: list[list[str]] = field(default_factory=list)  # backtraces beyond the steps'
    hooks: list[Hook] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)


def derive_result(test: Test) -> str:
    """Failed when a step or hook failed (or a failure was given), passed when every step
    passed (or there is none), skipped otherwise."""
    if test.result:
        return test.result
    if test.failures or any(s.result == "failed" for s in test.steps):
        return "failed"
    if any(h.result == "failed" for h in test.hooks):
        return "failed"
    if all(s.result == "passed" for s in test.steps):
        return "passed"
    return "skipped"


class Paths:
    """file_name (relative to the project root, as a live run's) and vc_filepath
    (relative to the git repository) of a path a report gives; a relative one is taken
    relative to the working directory, where the runner ran as far as we can know."""

    def __init__(self, cwd: str, root: str, repo_root: str | None) -> None:
        self.cwd, self.root, self.repo_root = cwd, root, repo_root
        self._known: dict[str, tuple[str, str | None]] = {}

    def of(self, raw: str) -> tuple[str, str | None]:
        found = self._known.get(raw)
        if found is None:
            if len(self._known) > 10_000:
                self._known.clear()  # a report of very many files: stay bounded
            found = self._known[raw] = self._compute(raw)
        return found

    def _compute(self, raw: str) -> tuple[str, str | None]:
        path = raw or "unknown.feature"
        if path.startswith("file:"):  # file:///abs (cucumber-js), file:rel or file:/abs (jvm)
            path = path[len("file:") :]
            path = path[2:] if path.startswith("///") else path
        elif path.startswith("classpath:"):
            return path[len("classpath:") :], None  # a JVM resource: no file to place
        absolute = os.path.abspath(os.path.join(self.cwd, path))
        vc_path = mapping.repo_path(absolute, self.repo_root)
        return mapping.relative_path(path, self.cwd, self.root), vc_path


def code_from_steps(element: dict, tags: list[str], steps: list[Step]) -> str:
    """A test's Gherkin rebuilt from what a JSON report keeps of it (its source is not in
    the report): tags, keyword and name, then each step with its table or doc string."""
    lines = []
    if tags:
        lines.append(" ".join("@" + tag for tag in tags))
    lines.append(f"{element.get('keyword') or 'Scenario'}: {element.get('name') or ''}")
    for step in steps:
        first, *rest = step.text.split("\n")
        lines.append(f"  {step.keyword} {first}")
        lines.extend("  " + line for line in rest)
    return "\n".join(lines)


def unique_name(base: str, taken: set[str]) -> str:
    """A test name unique in its file: repeats get " #2", " #3" (as a live run's)."""
    name, count = base, 1
    while name in taken:
        count += 1
        name = f"{base} #{count}"
    taken.add(name)
    return name


class ReportWriter:
    """Journals a report: begin() (meta and build start), then test() and build_hook()
    as they come, then finish() (build finish and the journal's end)."""

    def __init__(self, run_dir: Path, events_name: str, meta: dict, build_body, environment):
        """`build_body(started_at, framework)`: the build start's body, or None to report
        into an existing build (build_hashed_id) without starting or finishing it."""
        self.writer = journal.JournalWriter(run_dir, events_name)
        self.meta = meta
        self.build_body = build_body
        self.environment = dict(environment or {})
        self.counts = {"tests": 0, "hooks": 0, "logs": 0}
        self.began = False
        self.last_time: int | None = None
        self._refs = 0
        self._attachments = 0

    def _ref(self, prefix: str) -> str:
        self._refs += 1
        return f"{prefix}{self._refs}"

    def _seen(self, stamp: int | None) -> None:
        if stamp is not None and (self.last_time is None or stamp > self.last_time):
            self.last_time = stamp

    def begin(self, started_at: int, framework: dict | None) -> None:
        """The first call wins: a later file of the same import joins the same build."""
        if self.began:
            return
        self.began = True
        self.writer.append("meta", self.meta)
        body = self.build_body(started_at, framework)
        if body is not None:
            self.writer.append("build_start", body, "build")
        self._seen(started_at)

    def test(self, test: Test) -> None:
        if not self.began:
            self.begin(test.started_at, None)
        ref = self._ref("t")
        start = {
            "name": test.name,
            "file_name": test.file_name,
            "location": test.location,
            "scopes": test.scopes,
            "tags": test.tags,
            "started_at": test.started_at,
        }
        if test.vc_filepath:
            start["vc_filepath"] = test.vc_filepath
        if test.code is not None:
            start["body"] = {"lang": "gherkin", "code": test.code}
        if self.environment:
            start["environment"] = dict(self.environment)
        self.writer.append("test_start", start, ref)
        self.counts["tests"] += 1
        hook_refs = [self._hook(hook, ref, test.tags) for hook in test.hooks]
        self._logs(test.logs, {"test_run_uuid": {"$ref": ref}}, "TEST_LOG")
        result = derive_result(test)
        finish = {
            "result": result,
            "finished_at": test.finished_at,
            "duration_in_ms": max(1, test.finished_at - test.started_at),
            "file_name": test.file_name,
            "scopes": test.scopes,
            "meta": {"steps": [_step_draft(i, s) for i, s in enumerate(test.steps)]},
        }
        if result == "failed":
            finish["failure"] = failures_of(test)
        if self.environment:
            finish["environment"] = dict(self.environment)
        if hook_refs:
            finish["hooks"] = [{"$ref": r} for r in hook_refs]
        self.writer.append("test_finish", finish, ref)
        self._seen(test.finished_at)

    def build_hook(self, hook: Hook) -> None:
        """A hook run of the build (a global BeforeAll/AfterAll)."""
        if not self.began:
            self.begin(hook.started_at, None)
        self._hook(hook, None, None)

    def _hook(self, hook: Hook, test_ref: str | None, tags: list[str] | None) -> str:
        ref = self._ref("h")
        start = {
            "hook_type": hook.hook_type,
            "name": hook.name,
            "file_name": hook.file_name,
            "location": hook.location or hook.file_name,
            "scopes": hook.scopes,
            "started_at": hook.started_at,
        }
        if tags:
            start["tags"] = tags
        if test_ref is not None:
            start["test_run_id"] = {"$ref": test_ref}
        self.writer.append("hook_start", start, ref)
        self.counts["hooks"] += 1
        self._logs(hook.logs, {"hook_run_uuid": {"$ref": ref}}, "HOOK_LOG")
        finish = {
            "hook_type": hook.hook_type,
            "result": hook.result,
            "finished_at": hook.finished_at,
            "duration_in_ms": max(1, hook.finished_at - hook.started_at),
            "file_name": hook.file_name,
            "scopes": hook.scopes,
        }
        if hook.result == "failed":
            finish["failure"] = [{"backtrace": hook.failure or [f"{hook.name} failed"]}]
        self.writer.append("hook_finish", finish, ref)
        self._seen(hook.finished_at)
        return ref

    def _logs(self, logs: list[Log], link: dict, kind: str) -> None:
        drafts: list[dict] = []
        for log in logs:
            if log.data is None:
                drafts.extend(
                    entries.log_entries(kind, link, [(log.timestamp, log.level, log.message)])
                )
            else:
                self._attachments += 1
                entry = entries.attachment_entry(
                    self.writer, self._attachments, log.data, log.name, log.mime_type, log.timestamp
                )
                drafts.append({**entry, **link})
        self.counts["logs"] += len(drafts)
        for start in range(0, len(drafts), LOGS_PER_CALL):
            self.writer.append("logs", {"logs": drafts[start : start + LOGS_PER_CALL]})

    def ended(self, finished_at: int | None) -> None:
        """A report's run ended then (the build finishes at the latest such time)."""
        self._seen(finished_at)

    def finish(self, finished_at: int | None) -> None:
        """End the journal: the build's finish (when this import started it) and "end"."""
        if not self.began:
            self.begin(finished_at or 0, None)
        self._seen(finished_at)
        if self.build_body is not None and self.meta.get("owns_build", True):
            self.writer.append("build_finish", {"finished_at": self.last_time or 0}, "build")
        self.writer.append("end")
        self.writer.close()

    def close(self) -> None:
        """Close without ending (the import failed): the partial file is thrown away."""
        self.writer.close()


def _step_draft(index: int, step: Step) -> dict:
    item: dict = {"id": str(index + 1), "keyword": step.keyword, "text": step.text}
    item["result"] = step.result
    if step.started_at is not None and step.finished_at is not None:
        item["started_at"] = step.started_at
        item["finished_at"] = step.finished_at
        item["duration"] = max(0, step.finished_at - step.started_at)
    if step.failure:
        item["failure"] = step.failure
    return item


def failures_of(test: Test) -> list[dict]:
    """A failed test's failure[]: each failed step's (its message first, the step last,
    as a live run's), then the hooks' and the test's own."""
    out = []
    for step in test.steps:
        if step.result == "failed":
            lines = (step.failure or "Step failed").split("\n")
            out.append(
                {
                    "backtrace": [
                        *lines,
                        f"Failed step: {step.keyword} {step.text.split(chr(10))[0]}",
                    ]
                }
            )
    for hook in test.hooks:
        if hook.result == "failed":
            out.append({"backtrace": hook.failure or [f"{hook.name} failed"]})
    out.extend({"backtrace": lines} for lines in test.failures)
    if not out:
        out.append({"backtrace": ["Test failed"]})
    return out
