"""A quick reader for the plain Gherkin most feature files are written in.

The uploader rebuilds each scenario's description from the journaled lines of its file
(catalog.py).  behave's parser did that at ~40% of the uploader's CPU, on the core the
test run's own processes share: it makes a full model object (with capture buffers) per
step and tries every keyword, in two cases, on every line.  This reader covers the common
shape: one English Feature with tags and a free-text description, an optional Background,
and Scenarios of Given/When/Then/And/But/* steps with data tables or doc strings, comments
and blank lines anywhere.  For anything else (Rules, outlines, descriptions under a
scenario, another language, a doc string's content type, or a line behave would warn about
or reject) it returns None, and catalog.py uses behave's parser.  What it builds quacks like behave's model as far as scenarios.py and
mapping.py look; test_plain_gherkin.py checks that every description it gives equals
behave's, under behave 1.2.6 and 1.3.
"""

from __future__ import annotations

import re

# English step keywords as behave matches them: in this order, the line starting with
# the keyword and a space, case-sensitively or in lower case (behave 1.2.6 and 1.3 agree).
_STEP_KEYWORDS = (
    ("*", "* "),
    ("Given", "Given "),
    ("When", "When "),
    ("Then", "Then "),
    ("And", "And "),
    ("But", "But "),
)
_CONTINUATIONS = ("And", "But")
# The English section keywords (of behave 1.2.6 or 1.3) this reader leaves to behave.
_OTHER_SECTIONS = tuple(
    keyword + ":"
    for keyword in (
        "Business Need", "Ability", "Rule", "Example", "Examples", "Scenarios",
        "Scenario Outline", "Scenario Template",
    )
)  # fmt: skip


class Step:
    __slots__ = ("keyword", "name", "line", "table", "text")

    def __init__(self, keyword: str, name: str, line: int) -> None:
        self.keyword = keyword
        self.name = name
        self.line = line
        self.table: Table | None = None
        self.text: str | None = None


class Row:
    __slots__ = ("cells",)

    def __init__(self, cells: list[str]) -> None:
        self.cells = cells


class Table:
    def __init__(self, headings: list[str]) -> None:
        self.headings = headings
        self.rows: list[Row] = []

    def add(self, cells: list[str]) -> None:
        if len(cells) != len(self.headings):
            raise _NotPlain  # behave refuses the file
        self.rows.append(Row(cells))


class Background:
    def __init__(self, filename: str, line: int, name: str) -> None:
        self.filename = filename
        self.line = line
        self.keyword = "Background"
        self.name = name
        self.steps: list[Step] = []


class Scenario:
    def __init__(self, feature: Feature, line: int, name: str, tags: list[str]) -> None:
        self.filename = feature.filename
        self.line = line
        self.keyword = "Scenario"
        self.name = name
        self.tags = tags
        self.parent = self.feature = feature
        self.steps: list[Step] = []

    @property
    def background_steps(self) -> list[Step]:
        background = self.feature.background
        return list(background.steps) if background is not None else []

    @property
    def all_steps(self) -> list[Step]:
        return self.background_steps + self.steps


class Feature:
    def __init__(self, filename: str, line: int, name: str, tags: list[str]) -> None:
        self.filename = filename
        self.line = line
        self.keyword = "Feature"
        self.name = name
        self.tags = tags
        self.language = "en"
        self.background: Background | None = None
        self.scenarios: list[Scenario] = []

    def walk_scenarios(self) -> list[Scenario]:
        return list(self.scenarios)


def read_feature(
    lines: list[str], language: str | None, filename: str, strip_colon: bool | None = None
) -> Feature | None:
    """The feature of a file's lines, or None when they are not plain Gherkin (above).
    `strip_colon`: whether behave's parser drops a trailing ":" from the text of a step
    that has a table or doc string (1.2.6 does; 1.3 when BEHAVE_STRIP_STEPS_WITH_TRAILING_
    COLON=yes); None: unknown, such a step makes the file behave's."""
    if language not in (None, "en"):
        return None
    try:
        return _Reader(filename, strip_colon).read(lines)
    except _NotPlain:
        return None


class _NotPlain(Exception):
    """The file holds something this reader leaves to behave's parser."""


class _Reader:
    def __init__(self, filename: str, strip_colon: bool | None) -> None:
        self.filename = filename
        self.strip_colon = strip_colon
        self.feature: Feature | None = None
        self.statement: Background | Scenario | None = None  # whose steps come next
        self.tags: list[str] = []
        self.table: Table | None = None  # rows still coming, for the last step
        self.doc: tuple | None = None  # (closing quotes, indent, lines) of an open doc string

    def read(self, lines: list[str]) -> Feature:
        for number, raw in enumerate(lines, 1):
            if self.doc is not None:
                self._doc_string_line(raw)
                continue
            line = raw.strip()
            if not line:
                continue
            if line[0] == "#":
                self._comment(line)
                continue
            if self.table is not None:
                if line[0] == "|":
                    self.table.add(_cells(line))
                    continue
                self._end_argument()
            self._line(line, raw, number)
        if self.feature is None or self.tags or self.doc is not None:
            raise _NotPlain
        if self.table is not None:
            self._end_argument()
        return self.feature

    def _comment(self, line: str) -> None:
        said = line[1:].strip()
        if self.feature is None and not self.tags and said.lower().startswith("language:"):
            if said[9:].strip() != "en":
                raise _NotPlain  # behave reads the file in that language

    def _line(self, line: str, raw: str, number: int) -> None:
        feature = self.feature
        if line[0] == "@":
            self.tags.extend(_tags(line))
        elif line.startswith("Feature:"):
            if feature is not None:
                raise _NotPlain
            self.feature = Feature(self.filename, number, line[8:].strip(), self.tags)
            self.tags = []
        elif feature is None:
            raise _NotPlain
        elif line.startswith("Scenario:"):
            self.statement = Scenario(feature, number, line[9:].strip(), self.tags)
            feature.scenarios.append(self.statement)
            self.tags = []
        elif self.tags:
            raise _NotPlain  # tags belong to a Scenario (or to what this reader leaves alone)
        elif line.startswith("Background:"):
            if self.statement is not None or feature.background is not None:
                raise _NotPlain
            background = Background(self.filename, number, line[11:].strip())
            self.statement = feature.background = background
        elif self.statement is None:
            if line.startswith(_OTHER_SECTIONS):
                raise _NotPlain
            # a line of the feature's description (even one that looks like a step)
        elif not self.statement.steps:
            self._first_step(line, number)
        elif line.startswith(('"""', "'''")):
            if line not in ('"""', "'''") or self._last_step_has_argument():
                raise _NotPlain  # a content type after the quotes, or a second argument
            self.doc = (line, raw.index(line[0]), [])
        elif line[0] == "|":
            if self._last_step_has_argument():
                raise _NotPlain
            self.table = Table(_cells(line))
        else:
            self.statement.steps.append(_step(line, number))

    def _first_step(self, line: str, number: int) -> None:
        step = _step(line, number)  # a description line under a scenario: behave's
        if step.keyword in _CONTINUATIONS:
            # behave takes the step type of the Background's last step; without one,
            # behave 1.3 refuses the file (and 1.2.6 takes an earlier scenario's)
            background = self.feature.background
            if self.statement is background or background is None or not background.steps:
                raise _NotPlain
        self.statement.steps.append(step)

    def _last_step_has_argument(self) -> bool:
        step = self.statement.steps[-1]
        return step.table is not None or step.text is not None

    def _doc_string_line(self, raw: str) -> None:
        closing, indent, text = self.doc
        if raw.strip().startswith(closing):
            self._end_argument()
            return
        if raw[:indent].strip() or raw != raw.rstrip():
            # behave refuses text left of the opening quotes; behave 1.2.6 keeps trailing
            # blanks that 1.3 removes
            raise _NotPlain
        text.append(raw[indent:])

    def _end_argument(self) -> None:
        """A step's table or doc string is complete."""
        step = self.statement.steps[-1]
        if self.doc is not None:
            step.text = "\n".join(self.doc[2])
            self.doc = None
        else:
            step.table, self.table = self.table, None
        if step.name.endswith(":"):
            if self.strip_colon is None:
                raise _NotPlain
            if self.strip_colon:
                step.name = step.name[:-1]


def _tags(line: str) -> list[str]:
    found = []
    for word in line.split():
        if word[0] == "#":
            break
        if word[0] != "@" or len(word) == 1:
            raise _NotPlain
        found.append(word[1:])
    return found


def _step(line: str, number: int) -> Step:
    lowered = None
    for keyword, prefix in _STEP_KEYWORDS:
        if not line.startswith(prefix):
            if lowered is None:
                lowered = line.lower()
            if not lowered.startswith(prefix.lower()):
                continue
        return Step(keyword, line[len(prefix) :].strip(), number)
    raise _NotPlain  # a description, or a line behave refuses


_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def _cells(line: str) -> list[str]:
    """A table row's cells as behave splits them ("\\|" is a pipe inside a cell)."""
    if len(line) < 2 or line[-1] != "|":
        raise _NotPlain  # behave warns and cuts the row's last character
    return [cell.replace("\\|", "|").strip() for cell in _CELL_SEPARATOR.split(line[1:-1])]
