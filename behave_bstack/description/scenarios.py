"""What a test is, told from its Gherkin: the name, file, scopes, tags, code and step
texts of a test's start.  Works on behave's model and on the plain reader's
(plain_gherkin.py) alike, so the behave process (recording/payloads.py, which adds the
bodies of what ran) and the journal's reader (journal/catalog.py) give the same start.
Pure: no I/O but the file names it is given.  Runs in either process.
"""

from __future__ import annotations

import os

from ..settings import project
from . import mapping
from .mapping import METADATA_TAG


class TestDescriber:
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
        vc_path = mapping.repo_path(os.path.abspath(os.path.join(self.cwd, raw)), self.repo_root)
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


def parser_strips_colon() -> bool:
    """Does this behave's parser drop a trailing ":" from the text of a step with a table
    or doc string?  behave 1.2.6 always does; 1.3 when BEHAVE_STRIP_STEPS_WITH_TRAILING_COLON
    was "yes" as it started.  The reader needs it to read the feature file as behave did."""
    from behave.parser import Parser  # already imported: behave parsed the features

    return bool(getattr(Parser, "STRIP_STEPS_WITH_TRAILING_COLON", True))
