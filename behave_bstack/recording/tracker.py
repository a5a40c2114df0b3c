"""The tracker: turns behave's callbacks and hook calls into journal events.

It knows when things start and end (which behave does not always say), and which hook
belongs to which test.  How each payload looks is decided in payloads.py; where events go
is the outbox's business.

Scenario starts and ends are exact: behave's Scenario.run is wrapped for the run
(hookwatch.wrap_scenario_runs), so the end is seen after after_scenario and the context
cleanups, with the final status.  Should a scenario escape the wrapper, formatter.scenario()
starts it and its end is inferred at the next callback instead.

Every scenario behave selected is reported exactly once, including those that never ran
because before_all, before_feature or before_rule failed, or the run was aborted or
stopped (--stop): those are reported at the end of their feature (or of the run) as
failed, naming the hook, or as skipped.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ..base.clock import Clock, duration_ms
from ..description import mapping
from ..journal.drafts import SOURCE, STEP_TEMPLATE, passed_finish_line, start_line
from .capture import Sink, attachment_entry, behave_captured, log_entries, metadata_from_tags

LOGS_PER_CALL = 500  # the API's limit per logs call
SCENARIO_HOOKS = frozenset({"before_scenario", "after_scenario"})
STEP_HOOKS = frozenset({"before_step", "after_step"})
CONTAINER_BEFORE_HOOKS = {"before_feature": "feature", "before_rule": "rule", "before_all": "all"}


@dataclass
class HookCall:
    ref: str | None
    name: str
    func: object
    args: tuple
    start_ns: int
    test: TestRun | None
    subject: str
    journaled: bool
    failure: list[str] = field(default_factory=list)
    sink: Sink = field(default_factory=Sink)


@dataclass(slots=True)
class TestRun:
    ref: str
    scenario: object
    feature: object
    start_ns: int
    body_common: dict | None  # name, scopes, tags: see Payloads.common_of
    step_starts: dict[int, int] = field(default_factory=dict)
    step_ends: dict[int, int] = field(default_factory=dict)
    step_cursor: int = 0
    hook_refs: list[str] = field(default_factory=list)
    hook_failures: list[list[str]] = field(default_factory=list)
    hooks_by_name: dict[str, str] = field(default_factory=dict)
    sink: Sink = field(default_factory=Sink)
    step_hook_failures: dict[int, list[str]] = field(default_factory=dict)
    metadata: dict[str, list[str]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    cleanup_failures: list[list[str]] = field(default_factory=list)
    forced_result: str | None = None
    # The steps behave announced (formatter.step, after before_scenario): what it runs
    # and reports, whatever hooks did to the model (finish_current falls back to
    # scenario.all_steps when none were announced).
    steps: list = field(default_factory=list)
    # The line of every step the journal's reader gives this test (the file's steps), or
    # None when its start was described in full: the finish then names its steps.
    file_step_lines: list | None = None
    passed_steps: int = 0  # steps journaled as passed (step records) so far


class Tracker:
    # A plain test's start and passed finish are formatted directly (drafts.start_line,
    # passed_finish_line); tests turn this off to compare them with the general form.
    direct_forms = True

    def __init__(
        self,
        payloads,
        outbox,
        clock: Clock,
        *,
        step_hooks: str = "failed",
        report_excluded: bool = False,
    ) -> None:
        self.payloads = payloads
        self.outbox = outbox
        self.clock = clock
        self.step_hooks = step_hooks
        self.report_excluded = report_excluded
        self.config = None
        self.runner = None
        self.formatter = None  # ours: tells our runner from a behave run inside a step
        self._other_runners: set[int] = set()
        self._passed_status = None  # behave's status object for a passed step, once seen
        self.capture = None  # an OutputCapture while logs are collected
        self.feature = None
        self.current: TestRun | None = None
        self.container_failures: dict[int, tuple[str, list[str]]] = {}
        self.features_seen: list = []
        self.file_steps: dict[int, list] = {}  # id(scenario) -> its file's step lines
        self._ids = itertools.count(1)
        self.counts = {"tests": 0, "hooks": 0, "logs": 0}
        self.active_hooks: list[HookCall] = []
        self.container_hooks: dict[str, str] = {}  # hook name -> ref, in the current feature
        # custom_metadata / environment set outside a test: for the run, or for a feature
        self.run_extras: dict[str, dict] = {"metadata": {}, "environment": {}}
        self.feature_extras: dict[str, dict] = {"metadata": {}, "environment": {}}
        self.attachments = 0

    def current_sink(self) -> Sink | None:
        """Where output arriving now belongs: the running hook, else the running test."""
        for record in reversed(self.active_hooks):
            if record.ref is not None:
                return record.sink
        return self.current.sink if self.current is not None else None

    def next_ref(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    # -- features and rules ---------------------------------------------------
    def feature_started(self, feature) -> None:
        self.finish_current()
        self.feature = feature
        self.features_seen.append(feature)
        scenarios = _walk_scenarios(feature)
        self.index_feature(feature, scenarios)
        # As the file gives them, before any hook of this feature could change the model
        # (behave 1.3 announces a feature before before_feature runs).
        lines_of = mapping.StepLines().of
        self.file_steps = {id(s): lines_of(s) for s in scenarios}
        for scenario in scenarios:
            if getattr(scenario, "should_skip", False):  # (status is computed: slower)
                # Skipped before anything ran: deselected by a file:line location (behave
                # marks the others skipped; behavex selects scenarios this way).
                scenario._bstack_deselected = True

    def index_feature(self, feature, scenarios=None) -> None:
        if scenarios is None:
            scenarios = _walk_scenarios(feature)
        source = self.payloads.index_feature(feature, scenarios)
        if source is not None:
            key, lines = source
            self.outbox.emit(SOURCE, self.payloads.source_body(feature, lines, scenarios), key)

    def rule_started(self, rule) -> None:
        self.finish_current()

    def feature_finished(self) -> None:
        self.finish_current()
        if self.feature is not None:
            self.report_unrun(self.feature)
            self._emit_container_logs(self.feature)
        self.feature_extras = {"metadata": {}, "environment": {}}

    def _emit_container_logs(self, container) -> None:
        """behave 1.3 keeps what feature-level hooks printed on the feature."""
        if self.capture is None:
            return
        stamp = self.clock.epoch_ms()
        for part, level, text in behave_captured(container, None):
            hook_ref = self.container_hooks.get(part)
            if hook_ref:
                link = {"hook_run_uuid": {"$ref": hook_ref}}
                self.emit_logs("HOOK_LOG", link, [(stamp, level, text)])
        self.container_hooks = {}

    # -- scenarios ------------------------------------------------------------
    def scenario_entered(self, scenario, runner) -> None:
        if runner is not self.runner and not self._is_our_runner(runner):
            return  # a behave run started inside one of our steps: not ours to report
        if self.config is None:
            self.config = getattr(runner, "config", None)
        if not self.is_selected(scenario) and not self.report_excluded:
            return
        self.start_test(scenario)

    def scenario_left(self, scenario) -> None:
        if self.current is not None and self.current.scenario is scenario:
            self.finish_current()

    def scenario_announced(self, scenario) -> None:
        """formatter.scenario(): a fallback start for a scenario the wrapper missed."""
        if self.current is not None and self.current.scenario is scenario:
            return
        self.finish_current()
        if getattr(scenario, "_bstack_reported", False):
            return
        if self.is_selected(scenario) or self.report_excluded:
            self.start_test(scenario)

    def _is_our_runner(self, runner) -> bool:
        """The runner our formatter belongs to; another one runs a behave run inside a
        step (tools that test step libraries do), whose scenarios are not ours."""
        if id(runner) in self._other_runners:
            return False
        formatters = getattr(runner, "formatters", None)
        if self.runner is None and (self.formatter is None or formatters is None):
            self.runner = runner  # no better way to tell: the first one seen
            return True
        if self.formatter is not None and formatters is not None:
            if any(f is self.formatter for f in formatters):
                self.runner = runner
                return True
        self._other_runners.add(id(runner))
        return False

    def is_selected(self, scenario) -> bool:
        if getattr(scenario, "_bstack_deselected", False):
            return False
        config = self.config
        if config is None:
            return True
        try:
            if getattr(config, "name", None) and not scenario.should_run_with_name_select(config):
                return False
            expression = getattr(config, "tag_expression", None) or getattr(config, "tags", None)
            if type(expression).__name__ == "True_":
                return True  # behave 1.3 without --tags: every scenario (cheaper than asking)
            if expression is not None and not scenario.should_run_with_tags(expression):
                return False
        except Exception:  # noqa: BLE001 - selection API differs across versions
            return True
        return True

    def start_test(self, scenario, start_ns: int | None = None) -> TestRun:
        if self.current is not None:
            self.finish_current()
        feature = getattr(scenario, "feature", None) or self.feature
        start_ns = self.clock.now() if start_ns is None else start_ns
        ref = self.next_ref("t")
        payloads = self.payloads
        run = TestRun(ref, scenario, feature, start_ns, None)
        for extras in (self.run_extras, self.feature_extras):
            if extras["metadata"] or extras["environment"]:
                for key, values in extras["metadata"].items():
                    run.metadata.setdefault(key, []).extend(values)
                run.environment.update(extras["environment"])
        if payloads.tag_metadata_possible:
            for key, value in metadata_from_tags(payloads.common_of(run)["tags"]):
                run.metadata.setdefault(key, []).append(value)
        scenario._bstack_reported = True
        self.current = run
        started_at = self.clock.epoch_ms(start_ns)
        reference = payloads.reference(scenario)
        if reference is not None:
            run.file_step_lines = self.file_steps.get(id(scenario))
        plain = reference is not None and not payloads.environment and self.direct_forms
        if plain and type(reference[2]) is int:
            # The usual case: the journal already holds the feature file's lines, so the
            # start names the scenario and the reader describes it (catalog.py).
            self.outbox.writer.append_formatted(start_line, ref, reference, started_at)
        elif reference is not None:
            body = {"started_at": started_at}
            if payloads.environment:
                body["environment"] = dict(payloads.environment)
            self.outbox.emit("test_start", body, ref, extras={"scenario": reference})
        else:
            body = {**payloads.common_of(run), "started_at": started_at}
            # Its steps are named by the finish: asking for them now would make behave
            # copy the Background steps before before_scenario could change them.
            extras = payloads.start_extras(scenario, mapping.rule_of(scenario), [])
            self.outbox.emit("test_start", body, ref, extras=extras)
        self.counts["tests"] += 1
        return run

    def finish_current(self, end_ns: int | None = None) -> None:
        run = self.current
        if run is None:
            return
        self.current = None
        clock = self.clock
        end_ns = clock.now() if end_ns is None else end_ns
        self._emit_test_logs(run, end_ns)
        steps = run.steps
        if not steps:  # none announced: skipped before behave showed them, or never run
            steps = run.steps = list(getattr(run.scenario, "all_steps", None) or ())
        file_lines = run.file_step_lines
        as_in_file = file_lines is not None and file_lines == [step.line for step in steps]
        if as_in_file and self.direct_forms and self.payloads.plain_pass(run):
            # Most tests: formatted directly; its steps' records say the rest.
            duration = max(1, duration_ms(run.start_ns, end_ns))
            self.outbox.writer.append_formatted(
                passed_finish_line, run.ref, clock.epoch_ms(end_ns), duration, run.hook_refs
            )
            return
        body, results = self.payloads.test_finish(run, end_ns, clock)
        links = {"hooks": [{"$ref": r} for r in run.hook_refs]} if run.hook_refs else None
        extras = {"steps": results}
        if not as_in_file:  # the steps behave ran are not the file's: name them
            extras["templates"] = self.payloads.step_templates(steps)
        self.outbox.emit("test_finish", body, run.ref, links, extras=extras)

    def _emit_test_logs(self, run: TestRun, end_ns: int) -> None:
        """The test's own output, and what behave's capture kept of it and of its hooks."""
        entries = run.sink.drain()
        capture = self.capture
        captured = behave_captured(run.scenario, self.runner) if capture is not None else []
        if captured and capture.emitted_lines:  # records, not output: already taken
            captured = [(p, lv, t) for p, lv, t in _without_emitted(captured, capture) if t]
        if capture is not None and capture.emitted_lines:
            capture.emitted_lines = {}
        if not (entries or captured):
            return  # the usual case
        by_hook: dict[str, list] = {}
        if captured:
            stamp = self.clock.epoch_ms(end_ns)
            for part, level, text in captured:
                hook_ref = run.hooks_by_name.get(part)
                if hook_ref:
                    by_hook.setdefault(hook_ref, []).append((stamp, level, text))
                else:
                    entries.append((stamp, level, text))
        self.emit_logs("TEST_LOG", {"test_run_uuid": {"$ref": run.ref}}, entries)
        for hook_ref, hook_entries in by_hook.items():
            self.emit_logs("HOOK_LOG", {"hook_run_uuid": {"$ref": hook_ref}}, hook_entries)

    def emit_logs(self, kind: str, link: dict, entries: list) -> None:
        if not entries:
            return
        drafts = log_entries(kind, link, entries)
        self.counts["logs"] += len(drafts)
        for start in range(0, len(drafts), LOGS_PER_CALL):
            self.outbox.emit("logs", {"logs": drafts[start : start + LOGS_PER_CALL]})

    def cleanup_failed(self, cleanup_func, exc: BaseException) -> None:
        """A context.add_cleanup() function of the running scenario raised."""
        if self.current is None:
            return
        name = getattr(cleanup_func, "__name__", None) or repr(cleanup_func)
        lines = mapping.describe_exception(exc)
        lines[0] = f"CLEANUP-ERROR in {name}: {lines[0]}"
        self.current.cleanup_failures.append(lines)

    # -- what user code adds (api.py) -------------------------------------------
    def _extras_target(self) -> dict | None:
        """The test running now, or the level a setup hook speaks for."""
        if self.current is not None:
            return None
        names = [record.name for record in self.active_hooks]
        if "before_all" in names:
            return self.run_extras
        return self.feature_extras if names else self.run_extras

    def add_metadata(self, key: str, values: list[str]) -> None:
        target = self._extras_target()
        metadata = self.current.metadata if target is None else target["metadata"]
        metadata.setdefault(key, []).extend(values)

    def set_environment(self, fields: dict[str, str]) -> None:
        target = self._extras_target()
        (self.current.environment if target is None else target["environment"]).update(fields)

    def attach(self, data: bytes, name: str | None, mime_type: str) -> None:
        """Keep the bytes in the journal directory; journal a screenshot/attachment entry
        for the running hook or test (see README: what reaches TRA)."""
        hook = next((r for r in reversed(self.active_hooks) if r.ref is not None), None)
        if hook is not None:
            link = {"hook_run_uuid": {"$ref": hook.ref}}
        elif self.current is not None:
            link = {"test_run_uuid": {"$ref": self.current.ref}}
        else:
            return
        self.attachments += 1
        entry = attachment_entry(
            self.outbox, self.attachments, data, name, mime_type, self.clock.epoch_ms()
        )
        self.counts["logs"] += 1
        self.outbox.emit("logs", {"logs": [{**entry, **link}]})

    # -- steps ----------------------------------------------------------------
    def step_matched(self) -> None:
        run = self.current
        if run is not None:
            run.step_starts[run.step_cursor] = self.clock.now()

    def step_finished(self, step) -> None:
        run = self.current
        if run is None:
            return
        now = self.clock.now()
        steps = run.steps
        index = run.step_cursor
        if index >= len(steps) or steps[index] is not step:
            index = next((i for i, s in enumerate(steps) if s is step), index)
        end = run.step_ends.get(index)
        if end is None:
            end = run.step_ends[index] = now
        start = run.step_starts.get(index)
        if start is None:
            start = run.step_starts[index] = now
        run.step_cursor = index + 1
        # Journaled as it happens: a process killed later in this test still reports it.
        offset = self.clock.epoch_offset_ns
        started, finished = (offset + start) // 1_000_000, (offset + end) // 1_000_000
        status = step.status
        if status is not self._passed_status and mapping.step_result_of(status) == "passed":
            self._passed_status = status  # one object for every passed step
        if status is self._passed_status and index not in run.step_hook_failures:
            run.passed_steps += 1
            self.outbox.writer.append_template(STEP_TEMPLATE, run.ref, index, started, finished)
        else:
            item = self.payloads.step_item(run, index, step, started, finished)
            self.outbox.writer.append("step", None, run.ref, step=[index, *item])

    # -- hooks ----------------------------------------------------------------
    def on_hook(self, name: str, func, args: tuple, call):
        """Called by the hook wrappers; runs the hook and re-raises what it raised."""
        record = self.guard(self.hook_begin, name, func, args)
        if record is not None:
            self.active_hooks.append(record)
        try:
            result = call()
        except BaseException as exc:
            if record is not None:
                self.guard(self.hook_end, record, exc)
            raise
        if record is not None:
            self.guard(self.hook_end, record, None)
        return result

    def hook_begin(self, name: str, func, args: tuple) -> HookCall:
        now = self.clock.now()
        test = self.current
        if name in SCENARIO_HOOKS and args:
            scenario = args[0]
            if test is None or test.scenario is not scenario:
                # behave 1.2.6 runs before_scenario before announcing the scenario.
                if not getattr(scenario, "_bstack_reported", False) and (
                    self.is_selected(scenario) or self.report_excluded
                ):
                    test = self.start_test(scenario, now)
                else:
                    test = None
        elif name.endswith("_tag"):
            test = self.current
        elif name not in STEP_HOOKS:
            test = None
        journaled = name not in STEP_HOOKS or self.step_hooks == "all"
        # Step hooks run for every step: work out what they are only when reported.
        subject = self.payloads.hook_subject(name, args, test, self.feature) if journaled else None
        ref = None
        if journaled:
            ref = self.next_ref("h")
            body = self.payloads.hook_start(name, func, subject, test, self.clock.epoch_ms(now))
            self.outbox.emit("hook_start", body, ref, _test_link(test))
            self.counts["hooks"] += 1
            if test is not None:
                test.hook_refs.append(ref)
                test.hooks_by_name.setdefault(name, ref)
            else:
                self.container_hooks.setdefault(name, ref)
        if name == "after_step" and test is not None and _is_current_step(test, args):
            # The step body ended when after_step began: step times exclude step hooks.
            test.step_ends.setdefault(test.step_cursor, now)
        return HookCall(ref, name, func, args, now, test, subject, journaled)

    def hook_end(self, record: HookCall, exc: BaseException | None) -> None:
        now = self.clock.now()
        if self.active_hooks and self.active_hooks[-1] is record:
            self.active_hooks.pop()
        test = record.test
        if exc is not None:
            record.failure = [
                f"HOOK-ERROR in {record.name}: " + line if i == 0 else line
                for i, line in enumerate(mapping.describe_exception(exc))
            ]
            self._note_hook_failure(record)
        if (
            record.name == "before_step"
            and test is not None
            and _is_current_step(test, record.args)
        ):
            test.step_starts[test.step_cursor] = now  # the body starts after before_step
        if record.name in STEP_HOOKS and not record.journaled:
            if exc is None or self.step_hooks == "off":
                return  # a failure still shows on its step and its test
            # With the default setting, failing step hooks are reported.
            record.subject = self.payloads.hook_subject(
                record.name, record.args, test, self.feature
            )
            record.ref = self.next_ref("h")
            body = self.payloads.hook_start(
                record.name, record.func, record.subject, test, self.clock.epoch_ms(record.start_ns)
            )
            self.outbox.emit("hook_start", body, record.ref, _test_link(test))
            self.counts["hooks"] += 1
            if test is not None:
                test.hook_refs.append(record.ref)
        body = self.payloads.hook_finish(record, now, self.clock)
        self.emit_logs("HOOK_LOG", {"hook_run_uuid": {"$ref": record.ref}}, record.sink.drain())
        self.outbox.emit("hook_finish", body, record.ref)

    def _note_hook_failure(self, record: HookCall) -> None:
        test = record.test
        if record.name in STEP_HOOKS and test is not None:
            test.step_hook_failures[test.step_cursor] = record.failure
        elif test is not None:
            test.hook_failures.append(record.failure)
        elif record.name in CONTAINER_BEFORE_HOOKS or record.name == "before_tag":
            key = _container_key(record.name, record.args, self.feature)
            self.container_failures.setdefault(key, (record.name, record.failure))

    # -- scenarios that never ran ---------------------------------------------
    def report_unrun(self, feature) -> None:
        for scenario in _walk_scenarios(feature):
            if getattr(scenario, "_bstack_reported", False):
                continue
            if not self.is_selected(scenario) and not self.report_excluded:
                continue
            why = self._why_unrun(scenario, feature)
            self.report_never_ran(scenario, feature, why)

    def _why_unrun(self, scenario, feature) -> tuple[str, list[str]] | None:
        rule = mapping.rule_of(scenario)
        for key in (id(rule) if rule is not None else None, id(feature), 0):
            if key in self.container_failures:
                return self.container_failures[key]
        return None

    def report_never_ran(self, scenario, feature, why) -> None:
        now = self.clock.now()
        run = self.start_test(scenario, now)
        run.feature = feature
        if why is not None:
            hook, failure = why
            run.hook_failures.append([f"Not run: the {hook} hook failed."] + failure)
            run.forced_result = "failed"
        else:
            run.forced_result = "skipped"
        self.finish_current(now)

    def run_finished(self) -> None:
        self.finish_current()
        seen = {id(f) for f in self.features_seen}
        runner = self.runner
        for feature in getattr(runner, "features", None) or ():
            if id(feature) in seen:
                continue
            self.feature = feature
            self.index_feature(feature)
            self.report_unrun(feature)

    # -- safety ---------------------------------------------------------------
    def guard(self, func, *args):
        """Run a piece of bookkeeping; a bug in it must never reach behave."""
        try:
            return func(*args)
        except Exception as exc:  # noqa: BLE001
            self.outbox.internal_error(exc)
            return None


def _walk_scenarios(feature) -> list:
    walk = getattr(feature, "walk_scenarios", None)
    if walk is not None:
        return list(walk())
    return list(getattr(feature, "scenarios", ()))


def _without_emitted(captured: list, capture) -> list:
    return [
        (part, level, capture.without_emitted(text).strip("\n")) for part, level, text in captured
    ]


def _is_current_step(test: TestRun, args: tuple) -> bool:
    """Is a step hook's step the test's current one, not a step that
    context.execute_steps() runs inside it (behave calls step hooks for those too)?"""
    steps, cursor = test.steps, test.step_cursor
    return not args or cursor >= len(steps) or steps[cursor] is args[0]


def _container_key(name: str, args: tuple, feature) -> int:
    if name == "before_all":
        return 0
    if name == "before_tag":
        return id(feature)
    return id(args[0]) if args else id(feature)


def _test_link(test: TestRun | None) -> dict | None:
    return {"test_run_id": {"$ref": test.ref}} if test is not None else None
