"""plain_gherkin.py reads plain feature files exactly as behave's parser does, and leaves
everything else to behave's parser (catalog.py)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from behave_bstack.description.plain_gherkin import read_feature
from behave_bstack.journal.catalog import FeatureCatalog

ROOT = Path(__file__).resolve().parent.parent


def behave_strips_colon() -> bool:
    """Whether this behave drops the ":" ending a step that has a table (asked of its parser)."""
    from behave.parser import parse_feature

    feature = parse_feature("Feature: F\n  Scenario: S\n    Given users:\n      | a |\n")
    return feature.scenarios[0].steps[0].name == "users"


STRIPS = behave_strips_colon()


def described(lines: list[str], quick: bool, language: str | None = "en") -> object:
    """Every scenario's description by the reader, or the error that stopped it."""
    source = {"file": "f.feature", "path": "features/f.feature", "lines": lines}
    source["language"] = language
    source["strip_colon"] = STRIPS
    catalog = FeatureCatalog(source)
    catalog.quick = quick
    parsed = catalog._parse()
    if parsed is None:
        return ("error", catalog.error)
    scenarios = parsed[2]
    return [catalog.describe(i, s.line) for i, s in enumerate(scenarios)]


def same_as_behave(lines: list[str], language: str | None = "en") -> bool:
    """True when the quick reader took the file (and then gave behave's descriptions);
    False when it left the file to behave."""
    if read_feature(lines, language, "features/f.feature", STRIPS) is None:
        return False
    by_behave = described(lines, quick=False, language=language)
    assert by_behave == described(lines, quick=True, language=language), "\n".join(lines)
    return True


PLAIN = """\
# a comment
@smoke @team:web   # why
Feature: Checkout  works
  As a shopper
  I want to pay

  Background: logged in
    Given a user
      And a cart

  @fast
  Scenario: pay by card
    When I pay
    # a comment between steps
    Then it is paid
    * and logged
    but not emailed

  Scenario:
  Scenario: pay by card
    given lower case
    GIVEN upper case
    Then a step that ends with a colon:
    Then a step with # no comment
  @a @b
  @c
  Scenario: Ünïcode ✓
    Given 日本語

  Scenario: arguments
    Given these users:
      | name  | role \\| rank |
      # a comment inside the table
      | alice | admin a\\|b  |

      | bob   |              |
    When this text is sent:
      \"\"\"
      first line
        # not a comment

      last line
      \"\"\"
    Then this one too
      '''
      '''
"""


def test_a_plain_file_is_read_quickly_and_described_as_behave_does() -> None:
    lines = PLAIN.splitlines()
    assert same_as_behave(lines)
    assert same_as_behave(lines, language=None)
    feature = read_feature(lines, "en", "features/f.feature", STRIPS)
    names = [s.name for s in feature.scenarios]
    assert names == ["pay by card", "", "pay by card", "Ünïcode ✓", "arguments"]
    steps = [(s.keyword, s.name) for s in feature.scenarios[0].all_steps]
    assert steps == [
        ("Given", "a user"),
        ("And", "a cart"),
        ("When", "I pay"),
        ("Then", "it is paid"),
        ("*", "and logged"),
        ("But", "not emailed"),
    ]
    assert feature.tags == ["smoke", "team:web"]
    assert feature.scenarios[3].tags == ["a", "b", "c"]
    given, when, then = feature.scenarios[4].steps
    assert given.table.headings == ["name", "role | rank"]
    assert [row.cells for row in given.table.rows] == [["alice", "admin a|b"], ["bob", ""]]
    assert when.text == "first line\n  # not a comment\n\nlast line"
    assert then.text == "" and then.table is None


def test_the_colon_ending_a_step_with_an_argument_follows_behave() -> None:
    lines = ["Feature: F", "  Scenario: S", "    Given users:", "      | a |"]
    assert read_feature(lines, "en", "f.feature", True).scenarios[0].steps[0].name == "users"
    assert read_feature(lines, "en", "f.feature", False).scenarios[0].steps[0].name == "users:"
    assert read_feature(lines, "en", "f.feature", None) is None  # not known: behave's parser
    assert same_as_behave(lines)


@pytest.mark.parametrize(
    "text",
    [
        "# language: fr\nFonctionnalité: F\n  Scénario: S\n    Soit a",
        "Feature: F\n  Rule: R\n    Scenario: S\n      Given a",
        "Feature: F\n  Scenario Outline: S\n    Given <a>\n    Examples:\n      | a |\n      | 1 |",
        "Feature: F\n  Scenario: S\n    | a |\n    Given a",
        "Feature: F\n  Scenario: S\n    Given a\n      | a | b |\n      | 1 |",
        "Feature: F\n  Scenario: S\n    Given a\n      | a | b",
        "Feature: F\n  Scenario: S\n    Given a\n      |",
        'Feature: F\n  Scenario: S\n    Given a\n      """json\n      {}\n      """',
        'Feature: F\n  Scenario: S\n    Given a\n      """\n      never closed',
        'Feature: F\n  Scenario: S\n    Given a\n      """\n    x left of the quotes\n      """',
        'Feature: F\n  Scenario: S\n    Given a\n      """\n      trailing  \n      """',
        'Feature: F\n  Scenario: S\n    Given a\n      | a |\n      """\n      t\n      """',
        "Feature: F\n  Scenario: S\n    a description line\n    Given a",
        "Feature: F\n  Scenario: S\n    And a",
        "Feature: F\n  @tag\n  Background:\n    Given a",
        "Feature: F\n  Background:\n    Given a\n  Background:\n    Given b",
        "Feature: F\n  Example: S\n    Given a",
        "Feature: F\n  @a not-a-tag\n  Scenario: S",
        "Feature: F\n  Scenario: S\n    Given a\n  @dangling",
        "Scenario: no feature\n  Given a",
        "Feature: F\nFeature: G",
        "Feature: F\n  Scenario: S\n    Given",
        "",
    ],
)
def test_anything_not_plain_is_left_to_behave(text: str) -> None:
    assert read_feature(text.splitlines(), "en", "f.feature") is None


def test_a_feature_description_is_read_as_behave_reads_it() -> None:
    # behave matches section keywords case-sensitively and parses no steps there
    lines = ["Feature: F", "  scenario: lower case", "  Given a step-like line", "  | x |"]
    assert same_as_behave(lines)
    assert read_feature(lines, "en", "f.feature").scenarios == []


def test_another_language_is_left_to_behave() -> None:
    assert read_feature(["Feature: F"], "de", "f.feature") is None
    assert read_feature(["Feature: F"], "en", "f.feature") is not None


def test_every_feature_file_of_this_repository() -> None:
    files = sorted(p for p in ROOT.glob("**/*.feature") if ".venv" not in str(p))
    taken = [p for p in files if same_as_behave(p.read_text("utf-8-sig").splitlines())]
    assert len(files) >= 5
    assert taken, "the quick reader took none of this repository's feature files"


# -- generated files: many small variations, compared with behave's parser ------------

# Mostly what plain files hold; now and then something behave reads differently or rejects.
_ODD = 0.04
_STEP_WORDS = (["Given", "When", "Then", "And", "But", "*"], ["given", "THEN", "Givenx", "Given"])
_STEP_TEXTS = (["a thing", "ends with:", "  padded  ", "has # hash", "ünï ✓", '"q"', "x | y"], [""])
_DESCRIPTIONS = (["As a user", "# comment", ""], ["In order to: pay", "Given a step-like line"])
_TAGS = (["@x", "@y @z", "@x # note", "@a:b"], ["@", "@ok bad"])
_SCENARIOS = (["Scenario: S", "Scenario:", "Scenario:   S  x "], ["Example: E", "scenario: s"])
_FEATURES = (["Feature: Shop", "Feature:Shop", "Feature:"], ["Business Need: N", "Ability: A"])
_AFTER_STEP = (["# c", ""], ['"""', "a description line", "@dangling", "| x |"])
_CELLS = (["a", " b ", "", "c\\|d", "ü"], ["c\\", "|"])
_DOC_LINES = (["text", "  indented", "# not a comment", "", '"q"', "| not a table |"], ["t  "])


def _generated(rng: random.Random) -> list[str]:
    def pick(choices: tuple[list[str], list[str]]) -> str:
        usual, odd = choices
        return rng.choice(odd if rng.random() < _ODD else usual)

    def pad() -> str:
        return rng.choice(["", "  ", "    ", "\t"])

    def table() -> list[str]:
        width = rng.choice([1, 2, 2, 3])
        rows = []
        for _ in range(rng.randint(1, 3)):
            cells = [pick(_CELLS) for _ in range(width if rng.random() > _ODD else width + 1)]
            rows.append(pad() + "| " + " | ".join(cells) + " |")
        return rows

    def doc_string() -> list[str]:
        indent = rng.choice(["  ", "    ", "      "])
        quotes = rng.choice(['"""', "'''"])
        text = [indent + pick(_DOC_LINES) for _ in range(rng.randint(0, 3))]
        if rng.random() < _ODD:
            text.append("x")  # left of the opening quotes
        return [indent + quotes, *text, indent + quotes]

    def steps(most: int) -> list[str]:
        found = []
        for _ in range(rng.randint(0, most)):
            found.append(pad() + f"{pick(_STEP_WORDS)} {pick(_STEP_TEXTS)}")
            chance = rng.random()
            if chance < 0.15:
                found.extend(table())
            elif chance < 0.25:
                found.extend(doc_string())
            elif chance < 0.4:
                found.append(pad() + pick(_AFTER_STEP))
        return found

    lines: list[str] = []
    for _ in range(rng.randint(0, 2)):
        lines.append(rng.choice(["# comment", "# language: en", "@top", "@a @b # c"]))
    lines.append(pick(_FEATURES))
    for _ in range(rng.randint(0, 2)):
        lines.append(pad() + pick(_DESCRIPTIONS))
    if rng.random() < 0.5:
        if rng.random() < _ODD:
            lines.append(pad() + "@bg")
        lines.append(pad() + rng.choice(["Background:", "Background: named"]))
        lines.extend(steps(3))
    for _ in range(rng.randint(0, 4)):
        for _ in range(rng.choice([0, 0, 1, 2])):
            lines.append(pad() + pick(_TAGS))
        lines.append(pad() + pick(_SCENARIOS))
        lines.extend(steps(4))
    return lines


def test_generated_files_are_read_as_behave_reads_them() -> None:
    rng = random.Random(20261129)
    files = [_generated(rng) for _ in range(800)]
    taken = sum(same_as_behave(lines) for lines in files)
    assert taken >= 200, f"the quick reader took only {taken} of {len(files)} generated files"


@pytest.mark.parametrize("strip", ["", "yes"])
def test_the_behave_process_says_whether_its_parser_drops_the_colon(strip: str) -> None:
    # behave 1.3 reads BEHAVE_STRIP_STEPS_WITH_TRAILING_COLON once, as it is imported
    script = (
        "import sys; sys.path.insert(0, 'tests');"
        "from test_plain_gherkin import behave_strips_colon;"
        "from behave_bstack.description.scenarios import parser_strips_colon;"
        "print(behave_strips_colon(), parser_strips_colon())"
    )
    env = {**os.environ, "BEHAVE_STRIP_STEPS_WITH_TRAILING_COLON": strip}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    observed, said = out.stdout.split()
    assert observed == said
