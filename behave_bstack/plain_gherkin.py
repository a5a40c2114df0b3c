"""A quick reader for the plain Gherkin most feature files are written in.

The uploader rebuilds each scenario's description from the journaled lines of its file
(catalog.py).  behave's parser did that at ~40% of the uploader's CPU, on the core the
test run's own processes share: it makes a full model object (with capture buffers) per
step and tries every keyword, in two cases, on every line.  This reader covers the common
shape: one English Feature with tags and a free-text description, an optional Background,
and Scenarios of Given/When/Then/And/But/* steps, with comments and blank lines anywhere.
For anything else (Rules, outlines, tables, doc strings, descriptions under a scenario,
another language, or a line behave would reject) it returns None, and catalog.py uses
behave's parser.  What it builds quacks like behave's model as far as payloads.py and
mapping.py look; test_plain_gherkin.py checks that every description it gives equals
behave's, under behave 1.2.6 and 1.3.
"""

from __future__ import annotations

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
    __slots__ = ("keyword", "name", "line")
    table = None
    text = None

    def __init__(self, keyword: str, name: str, line: int) -> None:
        self.keyword = keyword
        self.name = name
        self.line = line


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


def read_feature(lines: list[str], language: str | None, filename: str) -> Feature | None:
    """The feature of a file's lines, or None when they are not plain Gherkin (above)."""
    if language not in (None, "en"):
        return None
    feature: Feature | None = None
    statement: Background | Scenario | None = None  # whose steps come next
    tags: list[str] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line[0] == "#":
            said = line[1:].strip()
            if feature is None and not tags and said.lower().startswith("language:"):
                if said[9:].strip() != "en":
                    return None  # behave reads the file in that language
            continue
        if line[0] == "@":
            more = _tags(line)
            if more is None:
                return None
            tags.extend(more)
            continue
        if line.startswith("Feature:"):
            if feature is not None:
                return None
            feature = Feature(filename, number, line[8:].strip(), tags)
            tags = []
            continue
        if feature is None:
            return None
        if line.startswith("Scenario:"):
            statement = Scenario(feature, number, line[9:].strip(), tags)
            feature.scenarios.append(statement)
            tags = []
            continue
        if tags:
            return None  # tags belong to a Scenario (or something this reader leaves alone)
        if line.startswith("Background:"):
            if statement is not None or feature.background is not None:
                return None
            statement = feature.background = Background(filename, number, line[11:].strip())
            continue
        if statement is None:
            if line.startswith(_OTHER_SECTIONS):
                return None
            continue  # a line of the feature's description (even one that looks like a step)
        step = _step(line, number)
        if step is not None:
            if step.keyword in _CONTINUATIONS and not statement.steps:
                # behave takes the step type of the Background's last step; without one,
                # behave 1.3 refuses the file (and 1.2.6 takes an earlier scenario's)
                background = feature.background
                if statement is background or background is None or not background.steps:
                    return None
            statement.steps.append(step)
            continue
        return None  # text under a scenario: a description, a table, a doc string, ...
    if feature is None or tags:
        return None
    return feature


def _tags(line: str) -> list[str] | None:
    found = []
    for word in line.split():
        if word[0] == "#":
            break
        if word[0] != "@" or len(word) == 1:
            return None
        found.append(word[1:])
    return found


def _step(line: str, number: int) -> Step | None:
    lowered = None
    for keyword, prefix in _STEP_KEYWORDS:
        if not line.startswith(prefix):
            if lowered is None:
                lowered = line.lower()
            if not lowered.startswith(prefix.lower()):
                continue
        return Step(keyword, line[len(prefix) :].strip(), number)
    return None
