"""The reader's side of a test_start that only names its scenario (drafts.py).

behave's thread journals a feature file's lines once; a test_start then says "the N-th
scenario of that file" and the reader describes it: name, scopes, tags, location, code and
steps.  It parses the lines with behave's own parser, as behave did during the run (same
language, same outline naming schema) — plain files with the quicker reader of
plain_gherkin.py, which gives the same result — and builds the description with the very
code the behave process uses for a test it describes in full (description/scenarios.py), so both forms
give the same start.  This keeps the building, and the bytes, off behave's thread.
"""

from __future__ import annotations

import contextlib

from ..description import mapping
from ..description.mapping import render_code
from ..description.plain_gherkin import read_feature
from ..description.scenarios import TestDescriber


class FeatureCatalog:
    """The scenarios of one journaled feature file, described on demand."""

    quick = True  # plain files are read by plain_gherkin.py; the tests compare both ways

    def __init__(self, source: dict) -> None:
        self.source = source
        self._parsed: tuple | None = None  # (payloads, feature, scenarios, key)
        self.error: str | None = None

    def describe(self, position: int, line: int) -> tuple[dict, str, list] | None:
        """(start body fields, code, step templates) of the scenario at `position` in the
        feature's walk (checked against its `line`), or None if it cannot be found."""
        parsed = self._parse()
        if parsed is None:
            return None
        payloads, feature, scenarios, key = parsed
        in_range = isinstance(position, int) and 0 <= position < len(scenarios)
        scenario = scenarios[position] if in_range else None
        if scenario is None or getattr(scenario, "line", None) != line:
            scenario = next((s for s in scenarios if getattr(s, "line", None) == line), None)
        if scenario is None:
            return None
        rule = mapping.rule_of(scenario)
        common = payloads.test_common(scenario, feature, rule)
        file_name = self.source.get("file") or common["file_name"]
        common["file_name"] = file_name
        common["location"] = f"{file_name}:{getattr(scenario, 'line', 0)}"
        common.pop("vc_filepath", None)
        if self.source.get("vc_filepath"):
            common["vc_filepath"] = self.source["vc_filepath"]
        extras = payloads.start_extras(
            scenario, rule, list(getattr(scenario, "all_steps", ()) or ())
        )
        code = render_code(extras["code"], {key: self.source.get("lines") or []})
        return common, code, extras["steps"]

    def release(self) -> None:
        """Let the parsed feature go now.  Its scenarios and the feature refer to each
        other, which only the cyclic collector frees, features later: the uploader's peak
        grew with the run (+5 MiB over 100,000 scenarios in 2,000-scenario files).
        (Describing again parses again.)"""
        parsed, self._parsed = self._parsed, None
        if parsed is not None:
            _unlink(parsed[1])

    def _parse(self):
        if self._parsed is None and self.error is None:
            try:
                self._parsed = self._parse_now()
            except Exception as exc:  # noqa: BLE001 - reported by the caller as a bad record
                self.error = f"{type(exc).__name__}: {exc}"
        return self._parsed

    def _parse_now(self) -> tuple:
        lines = list(self.source.get("lines") or [])
        path = self.source.get("path") or self.source.get("file") or "unknown.feature"
        language = self.source.get("language")
        strip_colon = self.source.get("strip_colon")
        feature = read_feature(lines, language, path, strip_colon) if self.quick else None
        if feature is not None:
            scenarios = feature.walk_scenarios()
        else:
            feature, scenarios = _parse_with_behave(lines, language, path, self.source)
        payloads = TestDescriber(".", None, None)
        payloads.index_feature(feature, scenarios, lines)
        key = payloads.source.key_of(str(feature.filename or ""))
        return payloads, feature, scenarios, key


def _unlink(feature) -> None:
    """Break a model's parent <-> child references (its lists of children, its background)
    so that reference counting frees it at once."""
    stack = [feature]
    while stack:
        node = stack.pop()
        for name in ("run_items", "scenarios", "rules"):
            children = getattr(node, name, None)
            if type(children) is list:  # (not a list a property makes on every call)
                stack.extend(children)
                children.clear()
        if getattr(node, "background", None) is not None:
            with contextlib.suppress(AttributeError, TypeError):
                node.background = None


def _parse_with_behave(lines: list[str], language, path: str, source: dict) -> tuple:
    from behave.model import ScenarioOutline
    from behave.parser import parse_feature

    with _paths_as_given():
        feature = parse_feature("\n".join(lines), language, path)
    if feature is None:
        raise ValueError("the journaled feature file has no feature")
    default_schema = ScenarioOutline.annotation_schema
    schema = source.get("outline_schema")
    try:
        if schema:
            ScenarioOutline.annotation_schema = schema  # our own process: the reader's
        scenarios = list(feature.walk_scenarios())
    finally:
        ScenarioOutline.annotation_schema = default_schema
    return feature, scenarios


@contextlib.contextmanager
def _paths_as_given():
    """behave makes every statement's file name relative to the working directory, with
    os.path.relpath, which was most of the reader's parsing time; the reader knows the
    file's names already (the journal has them), so the parser keeps them as given.  The
    working directory it asks for, a system call per statement, is then read once.  Only
    this (reader's) process is touched, and only while it parses."""
    from behave import model_core

    original = getattr(model_core, "make_relpath_if_possible", None)
    if original is None:  # behave 1.2.6 keeps file names as given anyway
        yield
        return
    original_os = getattr(model_core, "os", None)
    model_core.make_relpath_if_possible = lambda filename, base_directory=None: filename
    if original_os is not None:
        model_core.os = _OsWithCwdOnce(original_os)
    try:
        yield
    finally:
        model_core.make_relpath_if_possible = original
        if original_os is not None:
            model_core.os = original_os


class _OsWithCwdOnce:
    """The os module, but for getcwd(), which answers what it read when made."""

    def __init__(self, real_os) -> None:
        self._real_os = real_os
        self._cwd = real_os.getcwd()

    def getcwd(self) -> str:
        return self._cwd

    def __getattr__(self, name: str):
        return getattr(self._real_os, name)
