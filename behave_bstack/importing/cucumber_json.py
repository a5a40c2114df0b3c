"""Cucumber JSON (cucumber-jvm / cucumber-js `json`, pytest-bdd `--cucumberjson`, godog
`--format cucumber`) read into model.Test objects (`behave-bstack import`).

Runs in the `behave-bstack import` process.  Read one feature at a time (jsonstream.py).
What the format carries, mapped as Cucumber Messages are (messages.py):

* each "scenario" element is a test run; a "background" element's steps go before the
  next scenario's (cucumber-jvm writes them apart; pytest-bdd inlines them);
* name, tags (feature + element, without "@"), `uri:line`; scopes [feature] (the format
  has no Rules); repeats of a name in a file (outline rows) get " #2", " #3";
* steps with keyword, text (+ doc string / data table in Gherkin form), status
  (model.STATUS_RESULTS), the error message; `before`/`after` results are hook runs of
  the test (named by their code location: the format carries no hook names or types
  beyond before/after); embeddings are attachments, `output` lines TEST_LOG entries;
* times: `start_timestamp` when the element has one, durations in nanoseconds (the
  format's unit); without a start, a timeline ending at the file's modification time,
  each test starting where the previous one ended.
"""

from __future__ import annotations

import base64
import binascii
import os
from datetime import datetime
from types import SimpleNamespace

from ..description import mapping
from .context import ImportContext, json_features
from .model import (
    STATUS_RESULTS,
    Hook,
    Log,
    Step,
    Test,
    code_from_steps,
    cucumber_test_result,
    unique_name,
)

NS_PER_MS = 1_000_000


def read(path: str, context: ImportContext) -> None:
    total = sum(_element_ms(e) for f in json_features(path) for e in _elements(f))
    clock = [context.anchor_ms - total]
    context.sink.begin(clock[0], {"name": "cucumber-json", "version": "unknown"})
    for feature in json_features(path):
        if isinstance(feature, dict):
            _feature(feature, context, clock)
        else:
            context.about_report("an element of the report is not a feature; skipped")
    context.sink.ended(clock[0])


def _elements(feature) -> list:
    if not isinstance(feature, dict):
        return []
    return [e for e in feature.get("elements") or () if isinstance(e, dict)]


def _duration_ms(item) -> int:
    result = item.get("result") if isinstance(item, dict) else None
    duration = result.get("duration") if isinstance(result, dict) else None
    if isinstance(duration, (int, float)) and duration > 0:
        return int(duration // NS_PER_MS)
    return 0


def _element_ms(element: dict) -> int:
    items = [*(element.get("before") or ()), *(element.get("steps") or ())]
    return max(1, sum(_duration_ms(i) for i in [*items, *(element.get("after") or ())]))


def _start_of(element: dict) -> int | None:
    stamp = element.get("start_timestamp")
    if not isinstance(stamp, str):
        return None
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _feature(feature: dict, context: ImportContext, clock: list) -> None:
    uri = str(feature.get("uri") or feature.get("id") or "unknown.feature")
    file_name, vc_path = context.paths.of(uri)
    name = str(feature.get("name") or "").strip()
    scopes = [name] if name else [os.path.splitext(os.path.basename(file_name))[0] or file_name]
    feature_tags = _tags(feature.get("tags"))
    taken: set[str] = set()
    background: list = []
    for element in _elements(feature):
        if element.get("type") == "background":
            background = list(element.get("steps") or ())
            continue
        started = _start_of(element)
        if started is not None:
            clock[0] = started
        started = clock[0]
        line = element.get("line") or 0
        base = str(element.get("name") or "").strip() or f"Scenario at line {line}"
        test = Test(
            name=unique_name(base, taken),
            file_name=file_name,
            location=f"{file_name}:{line}",
            scopes=scopes,
            tags=mapping.add_tags(list(feature_tags), _tags(element.get("tags"))),
            started_at=started,
            finished_at=started,
            vc_filepath=vc_path,
        )
        statuses = []
        for hook in element.get("before") or ():
            statuses.append(_hook(hook, "beforeEach", "Before", test, clock, context))
        for item in [*background, *(element.get("steps") or ())]:
            if isinstance(item, dict):
                statuses.append(_step(item, test, clock))
        background = []
        for hook in element.get("after") or ():
            statuses.append(_hook(hook, "afterEach", "After", test, clock, context))
        test.finished_at = max(clock[0], started + 1)
        clock[0] = test.finished_at
        test.result = cucumber_test_result([s for s in statuses if s])
        test.code = code_from_steps(element, _tags(element.get("tags")), test.steps)
        context.sink.test(test)


def _tags(tags) -> list[str]:
    names = []
    for tag in tags or ():
        name = tag.get("name") if isinstance(tag, dict) else tag
        if name:
            names.append(str(name).lstrip("@"))
    return mapping.add_tags([], names)


def _status(item: dict) -> str | None:
    result = item.get("result")
    if not isinstance(result, dict) or not result.get("status"):
        return None
    return str(result["status"]).upper()


def _step(item: dict, test: Test, clock: list) -> str | None:
    keyword = str(item.get("keyword") or "").strip()
    name = str(item.get("name") or "")
    table = None
    rows = item.get("rows")
    if isinstance(rows, list) and rows:
        cells = [list((r or {}).get("cells") or ()) for r in rows]
        table = SimpleNamespace(
            headings=cells[0], rows=[SimpleNamespace(cells=c) for c in cells[1:]]
        )
    doc = item.get("doc_string")
    text = doc.get("value") if isinstance(doc, dict) else None
    shown = mapping.step_text(SimpleNamespace(name=name, table=table, text=text))
    status = _status(item)
    if status is None:
        test.steps.append(Step(keyword, shown, "skipped"))
        return None
    started = clock[0]
    clock[0] += _duration_ms(item)
    step = Step(keyword, shown, STATUS_RESULTS.get(status, "failed"), started, clock[0])
    if step.result == "failed":
        step.failure = _failure(status, item, f"{keyword} {name}")
    test.steps.append(step)
    test.logs.extend(_logs(item, clock[0]))
    return status


def _hook(item, hook_type: str, label: str, test: Test, clock: list, context) -> str | None:
    if not isinstance(item, dict):
        return None
    status = _status(item) or "UNKNOWN"
    location = str((item.get("match") or {}).get("location") or "")
    started = clock[0]
    clock[0] += _duration_ms(item)
    file_name = location.rsplit(":", 1)[0] if location else "unknown"
    hook = Hook(
        hook_type,
        f"{label}{' ' + location if location else ''}: {test.name}",
        file_name,
        list(test.scopes),
        started,
        max(clock[0], started),
        result=STATUS_RESULTS.get(status, "failed"),
        location=location or None,
        logs=_logs(item, clock[0]),
    )
    if hook.result == "failed":
        hook.failure = _failure(status, item, label).split("\n")
    test.hooks.append(hook)
    return status


def _failure(status: str, item: dict, what: str) -> str:
    if status == "UNDEFINED":
        return f"Undefined step: {what}\nNo step definition matches this text."
    message = (item.get("result") or {}).get("error_message")
    return str(message) if message else f"{status.lower().capitalize()}: {what}"


def _logs(item: dict, stamp: int) -> list[Log]:
    logs = []
    for line in item.get("output") or ():
        logs.append(Log(stamp, str(line)))
    for embedding in item.get("embeddings") or ():
        if not isinstance(embedding, dict):
            continue
        mime = embedding.get("mime_type") or (embedding.get("media") or {}).get("type")
        try:
            data = base64.b64decode(str(embedding.get("data") or ""))
        except (binascii.Error, ValueError):
            continue
        logs.append(
            Log(stamp, data=data, name=embedding.get("name"), mime_type=mime or "text/plain")
        )
    return logs
