"""Cucumber Messages (NDJSON) read into model.Test / model.Hook objects.

Runs in the `behave-bstack import` process.  Each line is parsed with the official
`cucumber-messages` package (its dataclasses and converter).  The mapping (README
"Cucumber-style projects"):

* each testCaseStarted .. testCaseFinished is a test run (an attempt > 0 is a retry: the
  same name, file, location and scopes, so TRA shows it as a re-run of the same test);
  name, tags, file and location from its pickle (repeats of a name in a file get " #2"),
  scopes [feature, rule] and the step keywords and code from the Gherkin document;
* its steps are meta.steps (the pickle step's text with its data table or doc string in
  Gherkin form, exact start and finish times); its Before/After hooks are hook runs
  linked to it; global hooks (testRunHookStarted) are hook runs of the build;
* attachments: text logs (`log`, text/x.cucumber.log+plain) are TEST_LOG / HOOK_LOG
  entries; images are TEST_SCREENSHOT and anything else TEST_ATTACHMENT, their bytes kept
  in the journal, as a live run's attachments;
* statuses: model.STATUS_RESULTS.

Memory stays flat: pickles and test cases (a stream may give all of them before the
first test runs) are kept in an on-disk index (spill.py), only as much as a test run
needs; only the latest few Gherkin documents are kept (gherkin_doc.py).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from types import SimpleNamespace

from ..description import mapping
from .context import ImportContext, ReportError
from .gherkin_doc import Documents
from .model import STATUS_RESULTS, Hook, Log, Step, Test, cucumber_test_result, unique_name
from .spill import Spill

HOOK_TYPES = {
    "BEFORE_TEST_RUN": "beforeAll",
    "AFTER_TEST_RUN": "afterAll",
    "BEFORE_TEST_CASE": "beforeEach",
    "AFTER_TEST_CASE": "afterEach",
    "BEFORE_TEST_STEP": "beforeStep",
    "AFTER_TEST_STEP": "afterStep",
}
LOG_MEDIA = "text/x.cucumber.log+plain"
RUN_SCOPES = ["Test run"]
MAX_WARNINGS = 10


def _load_messages():
    try:
        import cucumber_messages
    except ImportError:
        raise ReportError(
            "reading Cucumber Messages needs the cucumber-messages package: "
            "pip install 'behave-bstack[import]'"
        ) from None
    types = {}
    for item in dataclasses.fields(cucumber_messages.Envelope):
        camel = item.name.split("_")
        key = camel[0] + "".join(p.title() for p in camel[1:])
        name = "".join(p.title() for p in camel)
        types[key] = getattr(cucumber_messages, name)
    return cucumber_messages.message_converter, types


def ms(timestamp) -> int:
    return int(timestamp.seconds) * 1000 + int(timestamp.nanos) // 1_000_000


class _Running:
    """A test case being run (between its testCaseStarted and testCaseFinished)."""

    __slots__ = ("case_id", "attempt", "started", "steps", "logs")

    def __init__(self, case_id: str, attempt: int, started: int) -> None:
        self.case_id, self.attempt, self.started = case_id, attempt, started
        self.steps: dict[str, list] = {}  # test step id -> [start, end, result]
        self.logs: dict[str | None, list[Log]] = {}  # test step id (None: the case) -> logs


def read(path: str, context: ImportContext) -> None:
    converter, types = _load_messages()
    reader = _Reader(context, converter, types)
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if raw.strip():
                reader.line(number, raw)
    reader.close()


class _Reader:
    def __init__(self, context: ImportContext, converter, types) -> None:
        self.context = context
        self.converter, self.types = converter, types
        self.documents = Documents()
        self.spill = Spill(context.sink.writer.directory)
        self.hooks: dict[str, object] = {}
        self.running: dict[str, _Running] = {}
        self.run_hooks: dict[str, tuple] = {}  # testRunHookStarted id -> (hook id, start, logs)
        self.names: dict[str, set[str]] = {}  # uri -> names taken (the latest few files)
        self.framework = None
        self.messages = 0
        self.bad = 0

    # -- lines ---------------------------------------------------------------
    def line(self, number: int, raw: bytes) -> None:
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or len(data) != 1:
                raise ValueError("not one message")
            ((key, payload),) = data.items()
            kind = self.types.get(key)
            if kind is None:
                return  # a message of a newer protocol: nothing we map
            handler = getattr(self, "on_" + key, None)
            if handler is None:
                self.messages += 1
                return  # stepDefinition, suggestion, parameterType, ...: not reported
            message = self.converter.from_dict(payload, kind)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self._bad(number, exc)
            return
        self.messages += 1
        try:
            handler(message)
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            self._bad(number, exc)

    def _bad(self, number: int, exc: BaseException) -> None:
        self.bad += 1
        if self.bad <= MAX_WARNINGS:
            why = str(exc).split("\n")[0][:200] or type(exc).__name__
            self.context.about_report(f"line {number}: not a Cucumber message ({why}); skipped")

    def close(self) -> None:
        try:
            if self.bad > MAX_WARNINGS:
                self.context.about_report(
                    f"{self.bad} lines in all were not Cucumber messages; skipped"
                )
            if not self.messages:
                raise ReportError("no Cucumber message in it: not a Cucumber Messages report")
            for started_id in list(self.running):
                self._finish_case(started_id, None, interrupted=True)
        finally:
            self.spill.close()

    # -- definitions ---------------------------------------------------------
    def on_meta(self, meta) -> None:
        implementation = meta.implementation
        if implementation is not None and implementation.name:
            self.framework = {
                "name": implementation.name,
                "version": implementation.version or "unknown",
            }

    def on_source(self, source) -> None:
        self.documents.add_source(source.uri or "", source.data or "")

    def on_gherkinDocument(self, document) -> None:  # noqa: N802 - the message's name
        self.documents.add_document(document)

    def on_parseError(self, error) -> None:  # noqa: N802
        where = error.source.uri if error.source is not None else "?"
        if error.source is not None and error.source.location is not None:
            where += f":{error.source.location.line}"
        self.context.about_report(f"the runner could not parse {where}: {error.message}")

    def on_hook(self, hook) -> None:
        self.hooks[hook.id] = hook

    def on_pickle(self, pickle) -> None:
        document = self.documents.get(pickle.uri)
        file_name, vc_path = self.context.paths.of(pickle.uri)
        scenario = rule = None
        backgrounds: list = []
        if document is not None and pickle.ast_node_ids:
            scenario, rule, backgrounds = document.scenarios.get(
                pickle.ast_node_ids[0], (None, None, [])
            )
        row = None
        if document is not None and len(pickle.ast_node_ids) > 1:
            row = document.rows.get(pickle.ast_node_ids[-1])
        line = pickle.location.line if pickle.location is not None else None
        line = line or (row[0] if row else None) or (scenario.location.line if scenario else 0)
        feature = document.feature_name if document is not None else ""
        scopes = [n for n in (feature, (rule.name or "Rule").strip() if rule else "") if n]
        if not scopes:
            scopes = [file_name.rsplit("/", 1)[-1].split(".")[0] or file_name]
        taken = self.names.setdefault(pickle.uri, set())
        if len(self.names) > 16:
            self.names.pop(next(iter(self.names)))
        base = (pickle.name or "").strip() or f"Scenario at line {line}"
        steps = {}
        for step in pickle.steps:
            keyword = ""
            if document is not None and step.ast_node_ids:
                keyword = document.keywords.get(step.ast_node_ids[0], "")
            steps[step.id] = [keyword, _step_text(step)]
        self.spill.put(
            "p" + pickle.id,
            {
                "name": unique_name(base, taken),
                "file": file_name,
                "vc": vc_path,
                "location": f"{file_name}:{line}",
                "scopes": scopes,
                "tags": mapping.add_tags([], (t.name.lstrip("@") for t in pickle.tags)),
                "code": _code(document, scenario, backgrounds, row, pickle),
                "steps": steps,
            },
        )

    def on_testCase(self, case) -> None:  # noqa: N802
        steps = [[s.id, s.pickle_step_id, s.hook_id] for s in case.test_steps]
        self.spill.put("c" + case.id, {"pickle": case.pickle_id, "steps": steps})

    # -- the run -------------------------------------------------------------
    def on_testRunStarted(self, started) -> None:  # noqa: N802
        self.context.sink.begin(ms(started.timestamp), self.framework)

    def on_testRunFinished(self, finished) -> None:  # noqa: N802
        self.context.sink.ended(ms(finished.timestamp))
        problem = finished.exception.message if finished.exception is not None else None
        problem = problem or (finished.message if finished.success is False else None)
        if problem:
            self.context.about_report(f"the run ended with an error: {problem.splitlines()[0]}")

    def on_testCaseStarted(self, started) -> None:  # noqa: N802
        self.running[started.id] = _Running(
            started.test_case_id, started.attempt or 0, ms(started.timestamp)
        )

    def on_testStepStarted(self, started) -> None:  # noqa: N802
        run = self.running.get(started.test_case_started_id)
        if run is not None:
            stamp = ms(started.timestamp)
            run.steps[started.test_step_id] = [stamp, stamp, None]

    def on_testStepFinished(self, finished) -> None:  # noqa: N802
        run = self.running.get(finished.test_case_started_id)
        if run is None:
            return
        stamp = ms(finished.timestamp)
        entry = run.steps.setdefault(finished.test_step_id, [stamp, stamp, None])
        entry[1] = stamp
        entry[2] = finished.test_step_result

    def on_attachment(self, attachment) -> None:
        log = _log(attachment)
        if attachment.test_run_hook_started_id:
            found = self.run_hooks.get(attachment.test_run_hook_started_id)
            if found is not None:
                found[2].append(log)
            return
        run = self.running.get(attachment.test_case_started_id or "")
        if run is not None:
            run.logs.setdefault(attachment.test_step_id, []).append(log)

    def on_externalAttachment(self, attachment) -> None:  # noqa: N802
        run = self.running.get(attachment.test_case_started_id or "")
        stamp = ms(attachment.timestamp) if attachment.timestamp is not None else 0
        log = Log(stamp, f"{attachment.media_type} attachment at {attachment.url}")
        if run is not None:
            run.logs.setdefault(attachment.test_step_id, []).append(log)

    def on_testCaseFinished(self, finished) -> None:  # noqa: N802
        self._finish_case(finished.test_case_started_id, ms(finished.timestamp))

    def on_testRunHookStarted(self, started) -> None:  # noqa: N802
        self.run_hooks[started.id] = (started.hook_id, ms(started.timestamp), [])

    def on_testRunHookFinished(self, finished) -> None:  # noqa: N802
        found = self.run_hooks.pop(finished.test_run_hook_started_id, None)
        if found is None:
            return
        hook_id, started, logs = found
        definition = self.hooks.get(hook_id)
        hook_type = _hook_type(definition, "BEFORE_TEST_RUN")
        label = _hook_label(definition, "BeforeAll" if hook_type == "beforeAll" else "AfterAll")
        hook = self._hook_run(definition, hook_type, label, RUN_SCOPES, started)
        hook.finished_at = max(started, ms(finished.timestamp))
        _hook_result(hook, finished.result)
        hook.logs = logs
        self.context.sink.build_hook(hook)

    # -- a finished test case -------------------------------------------------
    def _finish_case(self, started_id: str, finished_at: int | None, interrupted=False) -> None:
        run = self.running.pop(started_id, None)
        if run is None:
            return
        case = self.spill.get("c" + run.case_id)
        if case is None:
            self.context.about_report(
                f"test case {run.case_id} is not described in the report; skipped"
            )
            return
        pickle = self.spill.get("p" + case["pickle"]) or _unknown_pickle(case["pickle"])
        end = (
            finished_at
            if finished_at is not None
            else max([run.started] + [e[1] for e in run.steps.values()])
        )
        test = Test(
            name=pickle["name"],
            file_name=pickle["file"],
            location=pickle["location"],
            scopes=pickle["scopes"],
            tags=pickle["tags"],
            started_at=run.started,
            finished_at=max(end, run.started),
            code=pickle["code"],
            vc_filepath=pickle["vc"],
            logs=list(run.logs.get(None, ())),
        )
        statuses = []
        seen_step = False
        for step_id, pickle_step_id, hook_id in case["steps"]:
            entry = run.steps.get(step_id)
            result = entry[2] if entry is not None else None
            status = _status(result) if result is not None else None
            if hook_id is not None:
                if entry is None:
                    continue  # a hook that never ran (the run was cut short)
                definition = self.hooks.get(hook_id)
                default = "AFTER_TEST_CASE" if seen_step else "BEFORE_TEST_CASE"
                hook_type = _hook_type(definition, default)
                label = _hook_label(definition, "Before" if hook_type == "beforeEach" else "After")
                hook = self._hook_run(
                    definition, hook_type, f"{label}: {test.name}", test.scopes, entry[0]
                )
                hook.finished_at = max(entry[0], entry[1])
                _hook_result(hook, result)
                hook.logs = run.logs.get(step_id, [])
                test.hooks.append(hook)
            else:
                seen_step = True
                keyword, text = pickle["steps"].get(pickle_step_id, ["", "(unknown step)"])
                if entry is None or result is None:
                    test.steps.append(Step(keyword, text, "skipped"))
                    test.logs.extend(run.logs.get(step_id, ()))
                    continue
                step = Step(keyword, text, STATUS_RESULTS.get(status, "failed"), entry[0])
                step.finished_at = max(entry[0], entry[1])
                if step.result == "failed":
                    step.failure = _failure_text(status, result, keyword, text)
                test.steps.append(step)
                test.logs.extend(run.logs.get(step_id, ()))
            if status is not None:
                statuses.append(status)
        test.result = cucumber_test_result(statuses)
        if interrupted:
            test.result = "failed"
            test.failures.append(["Interrupted: the report ends before this test case finished"])
        self.context.sink.test(test)

    def _hook_run(self, definition, hook_type: str, name: str, scopes, started: int) -> Hook:
        reference = getattr(definition, "source_reference", None)
        uri = getattr(reference, "uri", None) or ""
        file_name = self.context.paths.of(uri)[0] if uri else "unknown"
        line = getattr(getattr(reference, "location", None), "line", None)
        location = f"{file_name}:{line}" if line else file_name
        return Hook(hook_type, name, file_name, list(scopes), started, started, location=location)


# -- helpers -------------------------------------------------------------------


def _status(result) -> str:
    value = getattr(result, "status", None)
    return str(getattr(value, "value", value) or "UNKNOWN")


def _failure_text(status: str, result, keyword: str, text: str) -> str:
    if status == "UNDEFINED":
        return f"Undefined step: {keyword} {text}\nNo step definition matches this text."
    exception = getattr(result, "exception", None)
    if exception is not None:
        if exception.stack_trace:
            return exception.stack_trace
        return f"{exception.type}: {exception.message}" if exception.message else exception.type
    if result.message:
        return result.message
    return {
        "PENDING": "Pending step: not implemented yet",
        "AMBIGUOUS": "Ambiguous step: more than one step definition matches it",
    }.get(status, f"Step {status.lower()}")


def _hook_result(hook: Hook, result) -> None:
    status = _status(result) if result is not None else "UNKNOWN"
    hook.result = STATUS_RESULTS.get(status, "failed")
    if hook.result == "failed":
        hook.failure = _failure_text(status, result, "", hook.name).split("\n")


def _hook_type(definition, default: str) -> str:
    kind = getattr(definition, "type", None)
    kind = getattr(kind, "value", kind) or default
    return HOOK_TYPES.get(str(kind), "hook")


def _hook_label(definition, default: str) -> str:
    name = getattr(definition, "name", None) or default
    expression = getattr(definition, "tag_expression", None)
    return f"{name} ({expression})" if expression else name


def _log(attachment) -> Log:
    stamp = ms(attachment.timestamp) if attachment.timestamp is not None else 0
    media = attachment.media_type or "application/octet-stream"
    encoding = getattr(attachment.content_encoding, "value", attachment.content_encoding)
    body = attachment.body or ""
    if encoding == "BASE64":
        try:
            data = base64.b64decode(body)
        except (binascii.Error, ValueError):
            data = body.encode("utf-8", "replace")
    else:
        if media == LOG_MEDIA or media.startswith("text/x.cucumber.log"):
            return Log(stamp, body)
        data = body.encode("utf-8", "surrogatepass")
    return Log(stamp, data=data, name=attachment.file_name, mime_type=media)


def _step_text(step) -> str:
    argument = step.argument
    table = text = None
    if argument is not None:
        if argument.data_table is not None and argument.data_table.rows:
            rows = [[c.value for c in row.cells] for row in argument.data_table.rows]
            table = SimpleNamespace(
                headings=rows[0], rows=[SimpleNamespace(cells=r) for r in rows[1:]]
            )
        if argument.doc_string is not None:
            text = argument.doc_string.content
    return mapping.step_text(SimpleNamespace(name=step.text, table=table, text=text))


def _code(document, scenario, backgrounds: list, row, pickle) -> str:
    """The test's Gherkin: its Backgrounds' and its own block from the source (an
    Examples row's values noted), or rebuilt from the pickle without the source."""
    if document is not None and scenario is not None and document.lines:
        parts = [document.block(b.location.line) for b in backgrounds]
        if row is not None:
            parts.append("# Examples row: " + ", ".join(f"{k}={v}" for k, v in row[1].items()))
        parts.append(document.block(scenario.location.line))
        return "\n".join(p for p in parts if p)
    lines = [" ".join(t.name for t in pickle.tags)] if pickle.tags else []
    lines.append(f"Scenario: {pickle.name}")
    for step in pickle.steps:
        first, *rest = _step_text(step).split("\n")
        lines.append(f"  {first}")
        lines.extend("  " + line for line in rest)
    return "\n".join(lines)


def _unknown_pickle(pickle_id: str) -> dict:
    return {
        "name": f"Pickle {pickle_id} (not in the report)",
        "file": "unknown.feature",
        "vc": None,
        "location": "unknown.feature:0",
        "scopes": ["unknown"],
        "tags": [],
        "code": None,
        "steps": {},
    }
