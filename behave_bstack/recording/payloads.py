"""Building the bodies of TRA calls from what the tracker saw.

Bodies come out as plain dicts; the outbox passes them through limits.fit_payload() before
they are journaled, so nothing here worries about lengths.
"""

from __future__ import annotations

import os

from ..base.clock import Clock, duration_ms
from ..description import mapping
from ..settings import project
from .capture import METADATA_TAG


class Payloads:
    def __init__(
        self,
        cwd: str,
        repo_root: str | None = None,
        environment: dict | None = None,
        root: str | None = None,
    ):
        self.cwd = cwd
        # file_name and hook locations are relative to the project root (project.py);
        # behave's own file names are relative to the working directory below it.
        self.root = root or cwd
        self._cwd_in_root = project.prefix_of(cwd, self.root) if root else ""
        self.repo_root = repo_root
        self.environment = dict(environment or {})
        self._names: dict[int, str] = {}
        self._positions: dict[int, int] = {}  # id(scenario) -> place in the feature's walk
        self._source_key: str | None = None  # the journaled lines of the current feature
        self.tag_metadata_possible = True  # False once a feature's text has no such tag
        self._paths: dict[str, tuple[str, str | None]] = {}
        self._cwd_in_repo = _prefix_in_repo(cwd, repo_root)
        # per (feature, rule) of the current feature: file_name, vc_filepath, scopes, tags
        self._containers: dict[tuple[int, int], tuple] = {}
        self.source = mapping.GherkinSource()

    # -- tests ------------------------------------------------------------------
    def index_feature(
        self, feature, scenarios=None, lines: list[str] | None = None
    ) -> tuple[str, list[str]] | None:
        """Give every scenario of a feature a unique, stable name: behave's own (for an
        outline row it follows scenario_outline_annotation_schema), with " #2", " #3" added
        to repeats, counted in file order so the same file gives the same names.  Only the
        current feature's names are kept.  Returns the feature file's (key, lines) when
        they are new, for the journal (drafts.py); `lines`: the file's, when the journal's
        reader rebuilds the feature (catalog.py)."""
        self._names = {}
        self._positions = {}
        self._containers = {}
        taken: set[str] = set()
        if scenarios is None:
            walk = getattr(feature, "walk_scenarios", None)
            scenarios = walk() if walk else getattr(feature, "scenarios", ())
        for position, scenario in enumerate(scenarios):
            self._positions[id(scenario)] = position
            base = behave_name(scenario) or (
                f"{getattr(scenario, 'keyword', 'Scenario')} at line {getattr(scenario, 'line', '?')}"
            )
            name, count = base, 1
            while name in taken:  # also when a scenario is literally named "<base> #2"
                count += 1
                name = f"{base} #{count}"
            taken.add(name)
            self._names[id(scenario)] = name
        source = self.source.index_feature(feature, lines)
        self._source_key = self.source.key_of(str(getattr(feature, "filename", "") or ""))
        if source is not None:
            self.tag_metadata_possible = any(METADATA_TAG in line for line in source[1])
        elif self._source_key is None:
            self.tag_metadata_possible = True
        return source

    def source_body(self, feature, lines: list[str], scenarios=None) -> dict:
        """The journal's record of a feature file: its lines, and what the reader needs to
        parse them as behave did (catalog.py).  `scenarios`: the feature's walk, if known."""
        file_name, vc_path = self.paths_of(feature)
        body = {
            "file": file_name,
            "lines": lines,
            "path": str(getattr(feature, "filename", "") or ""),
            "language": getattr(feature, "language", None),
            "strip_colon": parser_strips_colon(),
        }
        if vc_path:
            body["vc_filepath"] = vc_path
        if scenarios is None:
            walk = getattr(feature, "walk_scenarios", None)
            scenarios = walk() if walk else ()
        for scenario in scenarios:
            if mapping.outline_row(scenario) is None:
                continue
            outline = getattr(scenario, "parent", None)
            schema = getattr(outline, "annotation_schema", None)
            if schema is None:  # behave 1.2.6: rows know no outline; the runner set it here
                from behave.model import ScenarioOutline

                schema = getattr(ScenarioOutline, "annotation_schema", None)
            body["outline_schema"] = schema
            break
        return body

    def reference(self, scenario) -> list | None:
        """[source key, place in the feature's walk, line]: all a test_start needs to say
        about a scenario of the current feature, whose file's lines are in the journal; the
        reader rebuilds the rest from them (catalog.py).  None: describe it in full."""
        position = self._positions.get(id(scenario))
        if position is None or self._source_key is None:
            return None
        return [self._source_key, position, getattr(scenario, "line", 0)]

    def common_of(self, run) -> dict:
        """The test's name, scopes and tags, worked out when first asked for (by a hook, or
        when the start is described in full)."""
        if run.body_common is None:
            run.body_common = self.test_common(
                run.scenario, run.feature, mapping.rule_of(run.scenario)
            )
        return run.body_common

    def name_of(self, scenario) -> str:
        name = self._names.get(id(scenario))
        if name is None:
            name = behave_name(scenario) or "Scenario"
        return name

    def paths_of(self, node) -> tuple[str, str | None]:
        """(file_name relative to the project root, vc_filepath relative to the repository),
        cached."""
        raw = str(getattr(node, "filename", "") or "unknown.feature")
        cached = self._paths.get(raw)
        if cached is None:
            cached = self._paths[raw] = self._compute_paths(raw)
        return cached

    def _compute_paths(self, raw: str) -> tuple[str, str | None]:
        if not os.path.isabs(raw) and os.path.normpath(raw) == raw and not raw.startswith(".."):
            # behave's usual case, a clean path below the working directory: no file
            # system calls (a suite with one scenario per file pays this per test).
            below_cwd = raw.replace(os.sep, "/")
            prefix = self._cwd_in_repo
            vc_path = None if prefix is None else prefix + below_cwd
            return self._cwd_in_root + below_cwd, vc_path
        vc_path = None
        if self.repo_root:
            absolute = os.path.abspath(os.path.join(self.cwd, raw))
            try:
                vc_path = os.path.relpath(absolute, self.repo_root)
            except ValueError:  # Windows: another drive than the repository's
                vc_path = ".."
            vc_path = None if vc_path.startswith("..") else vc_path.replace(os.sep, "/")
        return mapping.relative_path(raw, self.cwd, self.root), vc_path

    def file_name_of(self, node) -> str:
        return self.paths_of(node)[0]

    def test_common(self, scenario, feature, rule) -> dict:
        """What a test's start says about it (its code and steps travel apart:
        start_extras).  `rule`: the scenario's Rule or None (mapping.rule_of)."""
        key = (id(feature), id(rule))
        container = self._containers.get(key)
        if container is None:
            file_name, vc_path = self.paths_of(
                scenario if getattr(scenario, "filename", None) else feature
            )
            scopes = mapping.scopes_of(scenario, feature, file_name)
            container = (file_name, vc_path, scopes, mapping.container_tags(feature, rule))
            self._containers[key] = container
        file_name, vc_path, scopes, inherited_tags = container
        body = {
            "name": self.name_of(scenario),
            "file_name": file_name,
            "scopes": scopes,
            "tags": mapping.add_tags(list(inherited_tags), getattr(scenario, "tags", ())),
            "location": f"{file_name}:{getattr(scenario, 'line', 0)}",
        }
        if vc_path:
            body["vc_filepath"] = vc_path
        if self.environment:
            body["environment"] = dict(self.environment)
        return body

    def start_extras(self, scenario, rule, steps: list) -> dict:
        """The compact parts of a test_start draft: its code and its steps (drafts.py)."""
        return {"code": self.source.code_parts(scenario, rule), "steps": self.step_templates(steps)}

    @staticmethod
    def step_templates(steps: list) -> list[list[str]]:
        """[keyword, text] per step: what meta.steps shows of each (drafts.expand_steps)."""
        templates = []
        for step in steps:
            if step.table is None and step.text is None:  # most steps: just the line
                templates.append([step.keyword, step.name])
            else:
                templates.append([str(step.keyword or ""), mapping.step_text(step)])
        return templates

    def test_finish(self, run, end_ns: int, clock: Clock) -> tuple[dict, list]:
        """The finish draft and its compact step results (drafts.py)."""
        scenario = run.scenario
        steps, step_failures = self._steps(run, clock)
        failures = step_failures + [{"backtrace": lines} for lines in run.hook_failures]
        status_value = getattr(scenario, "status", None)
        result = run.forced_result or mapping.test_result_of(status_value)
        status = "passed" if result == "passed" else mapping.status_name(status_value)
        if run.cleanup_failures:
            failures.extend({"backtrace": lines} for lines in run.cleanup_failures)
            result = "failed"
        elif status == "cleanup_error":
            failures.append({"backtrace": cleanup_failure(scenario)})
        if failures and result != "failed" and run.hook_failures:
            result = "failed"  # a hook failed even though behave did not say so
        if result == "failed" and not failures:
            failures.append({"backtrace": [f"Scenario {status}"] + _message_lines(scenario)})
        body = {
            "result": result,
            "finished_at": clock.epoch_ms(end_ns),
            "duration_in_ms": max(1, duration_ms(run.start_ns, end_ns)),
        }
        if failures and result == "failed":
            body["failure"] = failures
        if run.metadata:
            body["custom_metadata"] = run.metadata
        environment = (
            {**self.environment, **run.environment} if run.environment else self.environment
        )
        if environment:
            body["environment"] = dict(environment)
        return body, steps

    def plain_pass(self, run) -> bool:
        """Is the test a pass that test_finish would describe with nothing more than its
        result, times and hook runs (drafts.passed_finish_line), its steps being
        journaled already (each passed)?"""
        return not (
            run.forced_result
            or run.hook_failures
            or run.cleanup_failures
            or run.step_hook_failures
            or run.metadata
            or run.environment
            or self.environment
            or run.passed_steps != len(run.steps)
            or mapping.test_result_of(getattr(run.scenario, "status", None)) != "passed"
        )

    def _steps(self, run, clock: Clock) -> tuple[list[list], list[dict]]:
        """[result, started_at, finished_at(, failure)] per step, and the test's failures."""
        steps, failures = [], []
        starts, ends = run.step_starts, run.step_ends
        offset = clock.epoch_offset_ns  # epoch_ms(), inlined: this runs for every step
        for index, step in enumerate(run.steps):
            start, end = starts.get(index), ends.get(index)
            if start is not None and end is not None:
                item = self.step_item(
                    run, index, step, (offset + start) // 1_000_000, (offset + end) // 1_000_000
                )
            else:
                item = self.step_item(run, index, step, None, None)
            if len(item) > 3:
                # The exception type and message first (README), the failed step last.
                failures.append(
                    {
                        "backtrace": [
                            *item[3].split("\n"),
                            f"Failed step: {step.keyword} {step.name}",
                        ]
                    }
                )
            steps.append(item)
        return steps, failures

    @staticmethod
    def step_item(run, index: int, step, started_at, finished_at) -> list:
        """[result, started_at, finished_at(, failure)] of one step of a test."""
        status = step.status
        result = mapping.step_result_of(status)
        item = [result, started_at, finished_at]
        hook_failures = run.step_hook_failures
        if result != "passed" or index in hook_failures:
            lines = hook_failures.get(index) or mapping.step_failure_lines(
                step, mapping.status_name(status)
            )
            if lines:
                if result == "passed":
                    item[0] = "failed"
                item.append("\n".join(lines))
        return item

    # -- hooks ------------------------------------------------------------------
    def hook_subject(self, name: str, args: tuple, test, feature) -> dict:
        """What a hook ran for: the name to show and the scopes to file it under."""
        target = args[0] if args else None
        if test is not None:
            common = self.common_of(test)
            scopes = common["scopes"]
            what = common["name"]
            if name.endswith("_step") and target is not None:
                what = f"{what} / {getattr(target, 'keyword', '')} {getattr(target, 'name', '')}"
            if name.endswith("_tag"):
                what = f"@{target} — {what}"
            return {"label": f"{name}: {what}", "scopes": scopes}
        if name.endswith("_all"):
            return {"label": name, "scopes": ["behave run"]}
        feature = target if name.endswith("_feature") and target is not None else feature
        file_name = self.file_name_of(feature) if feature is not None else "environment.py"
        scopes = mapping.scopes_of(None, feature, file_name)
        if name.endswith("_rule") and target is not None:
            scopes = scopes + [getattr(target, "name", "") or "Rule"]
            return {"label": f"{name}: {target.name}", "scopes": scopes}
        if name.endswith("_tag"):
            return {"label": f"{name}: @{target} — {scopes[0]}", "scopes": scopes}
        return {"label": f"{name}: {scopes[0]}", "scopes": scopes}

    def hook_start(self, name: str, func, subject: dict, test, started_at: str) -> dict:
        from .hookwatch import hook_location

        file_name, line = hook_location(func, self.cwd, self.root)
        body = {
            "hook_type": name,
            "name": subject["label"],
            "file_name": file_name,
            "location": f"{file_name}:{line}",
            "scopes": subject["scopes"],
            "started_at": started_at,
        }
        if test is not None:
            body["tags"] = self.common_of(test).get("tags", [])
        return body

    def hook_finish(self, record, end_ns: int, clock: Clock) -> dict:
        from .hookwatch import hook_location

        body = {
            "hook_type": record.name,
            "result": "failed" if record.failure else "passed",
            "finished_at": clock.epoch_ms(end_ns),
            "file_name": hook_location(record.func, self.cwd, self.root)[0],
            "scopes": record.subject["scopes"],
            "duration_in_ms": max(1, duration_ms(record.start_ns, end_ns)),
        }
        if record.failure:
            body["failure"] = [{"backtrace": record.failure}]
        return body


def behave_name(node) -> str:
    """A scenario's (or hook subject's) name as behave has it, trimmed at the ends only:
    inner spacing is part of a test's identity in TRA's history."""
    return str(getattr(node, "name", "") or "").strip()


def _prefix_in_repo(cwd: str, repo_root: str | None) -> str | None:
    """The working directory as a prefix of repository paths ("" at the top, "sub/" below
    it), or None when there is no repository or cwd lies outside it."""
    if not repo_root:
        return None
    try:
        rel = os.path.relpath(os.path.abspath(cwd), repo_root)
    except ValueError:  # Windows: another drive than the repository's
        return None
    if rel == os.curdir:
        return ""
    if rel.startswith(os.pardir):
        return None
    return rel.replace(os.sep, "/") + "/"


def cleanup_failure(scenario) -> list[str]:
    """behave leaves error_message empty for a failing context cleanup; its text is in
    the captured part named 'scenario.cleanup' (1.3)."""
    captured = getattr(scenario, "captured", None)
    for part in getattr(captured, "captures", None) or ():
        if "cleanup" in str(getattr(part, "name", "")):
            text = "\n".join(x for x in (part.stdout, part.stderr, part.log) if x)
            if text.strip():
                return [
                    "CLEANUP-ERROR: a context.add_cleanup() function raised"
                ] + text.splitlines()
    return ["CLEANUP-ERROR: a context.add_cleanup() function raised (no details captured)"]


def _message_lines(node) -> list[str]:
    message = getattr(node, "error_message", None)
    return str(message).splitlines() if message else []


def parser_strips_colon() -> bool:
    """Does this behave's parser drop a trailing ":" from the text of a step with a table
    or doc string?  behave 1.2.6 always does; 1.3 when BEHAVE_STRIP_STEPS_WITH_TRAILING_COLON
    was "yes" as it started.  The reader needs it to read the feature file as behave did."""
    from behave.parser import Parser  # already imported: behave parsed the features

    return bool(getattr(Parser, "STRIP_STEPS_WITH_TRAILING_COLON", True))
