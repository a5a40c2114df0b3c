"""What a Cucumber Messages stream's Gherkin documents say about a pickle: its scopes,
its step keywords, its Examples row, its Gherkin code.

Runs in the `behave-bstack import` process (messages.py).  Only the latest few documents
are kept: a stream gives each document just before its pickles.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict

KEPT = 8  # documents (and sources) kept at a time


class Document:
    """One feature file's AST, indexed by node id."""

    def __init__(self, document, lines: list[str] | None) -> None:
        self.lines = lines
        feature = document.feature
        self.feature_name = (feature.name or "").strip() if feature is not None else ""
        self.scenarios: dict[str, tuple] = {}  # id -> (scenario, rule, [backgrounds])
        self.rows: dict[str, tuple[int, dict[str, str]]] = {}  # row id -> (line, values)
        self.keywords: dict[str, str] = {}  # step id -> keyword as written
        starts: set[int] = set()
        if feature is None:
            self.starts: list[int] = []
            return
        feature_backgrounds = []
        for child in feature.children:
            if child.background is not None:
                feature_backgrounds.append(child.background)
                self._background(child.background, starts)
            elif child.scenario is not None:
                self._scenario(child.scenario, None, feature_backgrounds, starts)
            elif child.rule is not None:
                rule = child.rule
                starts.add(rule.location.line)
                backgrounds = list(feature_backgrounds)
                for item in rule.children:
                    if item.background is not None:
                        backgrounds.append(item.background)
                        self._background(item.background, starts)
                    elif item.scenario is not None:
                        self._scenario(item.scenario, rule, backgrounds, starts)
        self.starts = sorted(starts)

    def _background(self, background, starts: set[int]) -> None:
        starts.add(background.location.line)
        for step in background.steps:
            self.keywords[step.id] = step.keyword.strip()

    def _scenario(self, scenario, rule, backgrounds: list, starts: set[int]) -> None:
        starts.add(scenario.location.line)
        self.scenarios[scenario.id] = (scenario, rule, list(backgrounds))
        for step in scenario.steps:
            self.keywords[step.id] = step.keyword.strip()
        for examples in scenario.examples:
            header = [c.value for c in examples.table_header.cells] if examples.table_header else []
            for row in examples.table_body:
                values = dict(zip(header, (c.value for c in row.cells), strict=False))
                self.rows[row.id] = (row.location.line, values)

    def block(self, line: int) -> str | None:
        """The text of the block (scenario, background) starting at `line`, with its tags,
        up to the next block; None without the source."""
        lines = self.lines
        if not lines or not line:
            return None
        begin = line - 1
        while begin > 0 and lines[begin - 1].lstrip().startswith("@"):
            begin -= 1
        after = bisect.bisect_right(self.starts, line)
        end = (self.starts[after] - 1) if after < len(self.starts) else len(lines)
        while end > begin and lines[end - 1].lstrip().startswith("@"):
            end -= 1  # the next block's tags
        while end > begin and not lines[end - 1].strip():
            end -= 1
        return "\n".join(lines[begin:end])


class Documents:
    """The latest documents and sources, by uri."""

    def __init__(self) -> None:
        self._sources: OrderedDict[str, list[str]] = OrderedDict()
        self._documents: OrderedDict[str, Document] = OrderedDict()

    def add_source(self, uri: str, data: str) -> None:
        self._sources[uri] = data.splitlines()
        self._sources.move_to_end(uri)
        while len(self._sources) > KEPT:
            self._sources.popitem(last=False)

    def add_document(self, document) -> None:
        uri = document.uri or ""
        self._documents[uri] = Document(document, self._sources.get(uri))
        self._documents.move_to_end(uri)
        while len(self._documents) > KEPT:
            self._documents.popitem(last=False)

    def get(self, uri: str) -> Document | None:
        return self._documents.get(uri)
