"""behave's own `-f json` report, read into model.Test objects (`behave-bstack import`).

Runs in the `behave-bstack import` process.  The report is what behave's formatter
callbacks saw, so a test is described as a live `-f bstack` run describes it: the
scenario's name (an outline row's annotated name; repeats in a feature get " #2"), the
feature file relative to the project root, `path:line` (an outline row's line), scopes
[feature, rule], feature + rule + scenario tags, and meta.steps with every step behave
reported, Background steps first (keyword as written, text with its table or doc string
in Gherkin form), results mapped by the same table (description/mapping.py).

What the JSON does not carry, and how it is filled in:
* times: only step durations (seconds).  The run is laid out as one timeline ending at
  the file's modification time (behave writes the file as the run ends): each test
  starts where the previous one ended, each step takes its duration.
* Rules: the JSON has none.  When the feature file is readable (its path relative to the
  working directory, as behave printed it), the Rule above each scenario is read from it
  for scopes and tags; otherwise scopes are [feature].
* hooks and their logs: none (behave's JSON has no hook records); a scenario whose hook
  failed keeps behave's status (hook_error: failed).
* body: rebuilt from the steps of the JSON (as a live run does when the file is gone).
"""

from __future__ import annotations

import os
import re
from types import SimpleNamespace

from ..description import mapping
from .context import ImportContext, json_features
from .model import Log, Step, Test, code_from_steps, unique_name

MS = 1000


def read(path: str, context: ImportContext) -> None:
    total = sum(_scenario_ms(e) for f in json_features(path) for e in _scenarios(f))
    clock = [context.anchor_ms - total]
    from ..origin import host

    context.sink.begin(clock[0], {"name": "behave", "version": host.behave_version()})
    for feature in json_features(path):
        if not isinstance(feature, dict):
            context.about_report("an element of the report is not a feature; skipped")
            continue
        _feature(feature, context, clock)
    context.sink.ended(clock[0])


def _scenarios(feature) -> list:
    if not isinstance(feature, dict):
        return []
    return [
        e
        for e in feature.get("elements") or ()
        if isinstance(e, dict) and e.get("type") == "scenario"
    ]


def _scenario_ms(element: dict) -> int:
    return max(1, sum(_step_ms(s) for s in element.get("steps") or ()))


def _step_ms(step) -> int:
    result = step.get("result") if isinstance(step, dict) else None
    duration = result.get("duration") if isinstance(result, dict) else None
    return round(duration * MS) if isinstance(duration, (int, float)) and duration > 0 else 0


def _split_location(location: str) -> tuple[str, int]:
    path, _, line = str(location or "").rpartition(":")
    if not path or not line.isdigit():
        return str(location or "unknown.feature"), 0
    return path, int(line)


def _feature(feature: dict, context: ImportContext, clock: list) -> None:
    raw_path, _ = _split_location(feature.get("location"))
    file_name, vc_path = context.paths.of(raw_path)
    feature_name = str(feature.get("name") or "").strip()
    rules = RuleReader(os.path.join(context.paths.cwd, raw_path))
    taken: set[str] = set()
    feature_tags = mapping.add_tags([], feature.get("tags"))
    for element in _scenarios(feature):
        _, line = _split_location(element.get("location"))
        rule = rules.rule_at(line)
        scopes = [n for n in (feature_name, rule[0] if rule else "") if n.strip()]
        if not scopes:
            scopes = [os.path.splitext(os.path.basename(file_name))[0] or file_name]
        tags = mapping.add_tags(list(feature_tags), rule[1] if rule else ())
        base = str(element.get("name") or "").strip()
        base = base or f"{element.get('keyword') or 'Scenario'} at line {line}"
        started = clock[0]
        steps = []
        for item in element.get("steps") or ():
            if isinstance(item, dict):
                steps.append(_step(item, clock))
        finished = max(clock[0], started + 1)
        clock[0] = finished
        status = element.get("status")
        test = Test(
            name=unique_name(base, taken),
            file_name=file_name,
            location=f"{file_name}:{line}",
            scopes=scopes,
            tags=mapping.add_tags(tags, element.get("tags")),
            started_at=started,
            finished_at=finished,
            steps=[s for s, _ in steps],
            code=code_from_steps(
                element, [str(t) for t in element.get("tags") or ()], [s for s, _ in steps]
            ),
            vc_filepath=vc_path,
            # behave's JSON sometimes leaves a scenario's status out (it writes it on the
            # Background element that follows): the steps say it then.
            result=mapping.test_result(status) if status else None,
            logs=[log for _, logs in steps for log in logs],
        )
        if test.result == "failed" and not any(s.result == "failed" for s in test.steps):
            test.failures.append([f"Scenario {status}"])
        context.sink.test(test)


def _step(item: dict, clock: list) -> tuple[Step, list[Log]]:
    keyword = str(item.get("keyword") or "")
    name = str(item.get("name") or "")
    text = item.get("text")
    if isinstance(text, list):
        text = "\n".join(str(line) for line in text)
    table = item.get("table")
    if isinstance(table, dict):
        table = SimpleNamespace(
            headings=list(table.get("headings") or ()),
            rows=[SimpleNamespace(cells=list(row)) for row in table.get("rows") or ()],
        )
    else:
        table = None
    shown = mapping.step_text(SimpleNamespace(name=name, text=text, table=table))
    result = item.get("result")
    if not isinstance(result, dict):
        return Step(keyword, shown, "skipped"), []  # never ran
    status = str(result.get("status") or "unknown")
    started = clock[0]
    clock[0] += _step_ms(item)
    step = Step(keyword, shown, mapping.step_result(status), started, clock[0])
    if step.result == "failed" or status not in ("passed", "skipped", "untested"):
        step.failure = _failure(status, result, keyword, name)
    logs = []
    for embedding in item.get("embeddings") or ():
        logs.append(_embedding(embedding, clock[0]))
    return step, [log for log in logs if log is not None]


def _failure(status: str, result: dict, keyword: str, name: str) -> str | None:
    if status == "undefined":
        return f"Undefined step: {keyword} {name}\nNo step definition matches this text."
    message = result.get("error_message")
    if isinstance(message, list):
        message = "\n".join(str(line) for line in message)
    if message:
        return str(message)
    return f"Step {status}" if mapping.step_result(status) == "failed" else None


def _embedding(embedding, stamp: int) -> Log | None:
    import base64
    import binascii

    if not isinstance(embedding, dict):
        return None
    try:
        data = base64.b64decode(str(embedding.get("data") or ""), validate=False)
    except (binascii.Error, ValueError):
        return None
    mime = str(embedding.get("mime_type") or "application/octet-stream")
    return Log(stamp, data=data, name=embedding.get("name"), mime_type=mime)


_LANGUAGE = re.compile(r"^\s*#\s*language\s*:\s*([\w-]+)", re.IGNORECASE)


class RuleReader:
    """The Rules of a feature file, read from its text when it is there: [(line, name,
    tags)].  Rule keywords of the file's language (behave's i18n table)."""

    def __init__(self, path: str) -> None:
        self.rules: list[tuple[int, str, list[str]]] = []
        try:
            with open(path, encoding="utf-8-sig") as handle:
                lines = handle.read().splitlines()
        except (OSError, UnicodeDecodeError):
            return
        keywords = _rule_keywords(lines)
        tags: list[str] = []
        for number, line in enumerate(lines, 1):
            stripped = line.strip()
            if stripped.startswith("@"):
                tags.extend(t.lstrip("@") for t in stripped.split("#")[0].split())
                continue
            for keyword in keywords:
                if stripped.startswith(keyword + ":"):
                    self.rules.append((number, stripped[len(keyword) + 1 :].strip(), tags))
                    break
            if stripped and not stripped.startswith("#"):
                tags = []

    def rule_at(self, line: int) -> tuple[str, list[str]] | None:
        """(name, tags) of the Rule a scenario at `line` belongs to, if any."""
        found = None
        for start, name, tags in self.rules:
            if start < line:
                found = (name or "Rule", tags)
        return found


def _rule_keywords(lines: list[str]) -> list[str]:
    language = "en"
    for line in lines[:5]:
        match = _LANGUAGE.match(line)
        if match:
            language = match.group(1)
            break
    try:
        from behave.i18n import languages
    except ImportError:  # pragma: no cover - behave is a dependency
        return ["Rule"]
    words = (languages.get(language) or languages["en"]).get("rule") or ["Rule"]
    return [w.strip() for w in words if w.strip() and w.strip() != "*"]
