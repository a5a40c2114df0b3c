"""A test_start that only names its scenario (catalog.py) reads back exactly as the start
the behave process would have described in full."""

from __future__ import annotations

from pathlib import Path

import pytest
from behave.model import ScenarioOutline
from behave.parser import parse_file
from helpers import BEHAVE_13, CONFORMANCE

from behave_bstack.description import mapping
from behave_bstack.journal.drafts import Expander, render_code
from behave_bstack.recording.payloads import Payloads

TRICKY = """\
@team.a
Feature: Tricky

  Background:
    Given a start

  @smoke
  Scenario: Same name
    Given a table
      | a | b |
      | 1 | 2 |

  Scenario: Same name
    Given a doc string
      \"\"\"
      text
      \"\"\"

  Scenario Outline: Row <x>
    When it is <x>

    @ex
    Examples: Things <x>
      | x |
      | 1 |
      | 2 |
"""


def both_forms(feature_path: Path, cwd: Path) -> list[tuple[dict, dict]]:
    """(start in full, start by reference) for every scenario of a feature file, as the
    behave process journals them and a reader expands them."""
    feature = parse_file(str(feature_path))
    scenarios = list(feature.walk_scenarios())
    payloads = Payloads(str(cwd), str(cwd), {"stage": "ci"})
    key, lines = payloads.index_feature(feature, scenarios)
    expander = Expander()
    assert expander.expand({"op": "source", "ref": key, "body": payloads.source_body(feature, lines)}) is None  # fmt: skip
    pairs = []
    for number, scenario in enumerate(scenarios, 1):
        rule = mapping.rule_of(scenario)
        full = {**payloads.test_common(scenario, feature, rule), "started_at": 7}
        extras = payloads.start_extras(scenario, rule, list(scenario.all_steps))
        full["body"] = {"lang": "gherkin", "code": render_code(extras["code"], {key: lines})}
        full["steps"] = extras["steps"]
        reference = payloads.reference(scenario)
        assert reference is not None
        body = {"started_at": 7, "environment": dict(payloads.environment)}
        record = {"op": "test_start", "ref": f"t{number}", "scenario": reference, "body": body}
        expanded = expander.expand(record)["body"]
        expanded["steps"] = expander.open_tests[f"t{number}"][2]
        pairs.append((full, expanded))
    return pairs


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in CONFORMANCE.glob("*.feature"))
    if BEHAVE_13
    else ["data_docstrings.feature", "unicode.feature"],
)
def test_every_conformance_scenario_reads_back_as_described_in_full(name: str) -> None:
    pairs = both_forms(CONFORMANCE / name, CONFORMANCE.parent.parent)
    assert pairs
    for full, expanded in pairs:
        assert expanded == full


def test_repeated_names_tables_doc_strings_and_outline_rows(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "features" / "tricky.feature"
    path.parent.mkdir()
    path.write_text(TRICKY, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    pairs = both_forms(Path("features/tricky.feature"), tmp_path)
    names = [expanded["name"] for _, expanded in pairs]
    assert names == [
        "Same name",
        "Same name #2",
        "Row 1 -- @1.1 Things 1",
        "Row 2 -- @1.2 Things 2",
    ]
    for full, expanded in pairs:
        assert expanded == full
    assert pairs[0][1]["vc_filepath"] == "features/tricky.feature"
    assert pairs[0][1]["tags"] == ["team.a", "smoke"]


def test_a_custom_outline_schema_is_used_by_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "tricky.feature"
    path.write_text(TRICKY, encoding="utf-8")
    default = ScenarioOutline.annotation_schema
    ScenarioOutline.annotation_schema = "{name} [row {row.id}]"  # as the runner sets it
    try:
        feature = parse_file(str(path))
        scenarios = list(feature.walk_scenarios())
        payloads = Payloads(str(tmp_path))
        key, lines = payloads.index_feature(feature, scenarios)
        source = payloads.source_body(feature, lines)
        reference = payloads.reference(scenarios[2])
    finally:
        ScenarioOutline.annotation_schema = default
    expander = Expander()  # the reader runs with behave's default schema
    expander.expand({"op": "source", "ref": key, "body": source})
    start = expander.expand({"op": "test_start", "ref": "t1", "scenario": reference, "body": {}})
    assert start["body"]["name"] == "Row 1 [row 1.1]"


def test_a_scenario_that_moved_is_found_by_its_line_and_a_lost_one_says_so() -> None:
    expander = Expander()
    lines = ["Feature: F", "", "  Scenario: A", "    Given a", "", "  Scenario: B", "    Given b"]
    expander.expand({"op": "source", "ref": "s1", "body": {"file": "f.feature", "lines": lines}})
    moved = expander.expand({"op": "test_start", "ref": "t1", "scenario": ["s1", 0, 6], "body": {}})
    assert moved["body"]["name"] == "B"
    assert moved["body"]["location"] == "f.feature:6"
    lost = expander.expand({"op": "test_start", "ref": "t2", "scenario": ["s1", 5, 40], "body": {}})
    assert lost["body"]["name"] == "Scenario at f.feature:40 (not found in the journal)"
    odd = expander.expand({"op": "test_start", "ref": "t3", "scenario": ["s1", None], "body": {}})
    assert odd["body"]["name"] == "Scenario at f.feature:None (not found in the journal)"
    broken = Expander()
    broken.expand({"op": "source", "ref": "s1", "body": {"file": "g.feature", "lines": ["Scenario: no feature"]}})  # fmt: skip
    gone = broken.expand({"op": "test_start", "ref": "t1", "scenario": ["s1", 0, 1], "body": {}})
    assert gone["body"]["name"].startswith("Scenario at g.feature:1 (")
    assert gone["body"]["file_name"] == "g.feature"


@pytest.mark.skipif(not BEHAVE_13, reason="behave 1.2.6 does not ask for the directory")
def test_the_reader_asks_for_the_working_directory_once_and_leaves_behave_as_it_was(
    monkeypatch,
) -> None:
    import os

    from behave import model_core

    before = (model_core.os, model_core.make_relpath_if_possible)
    asked = []
    real_getcwd = os.getcwd
    monkeypatch.setattr(os, "getcwd", lambda: asked.append(1) or real_getcwd())
    expander = Expander()
    # (a scenario's description: a file plain_gherkin.py leaves to behave's parser)
    lines = ["Feature: F", "", "  Scenario: A", "    described", "    Given a", "    When b"]
    expander.expand({"op": "source", "ref": "s1", "body": {"file": "f.feature", "lines": lines}})
    start = expander.expand({"op": "test_start", "ref": "t1", "scenario": ["s1", 0, 3], "body": {}})
    assert start["body"]["name"] == "A" and start["body"]["location"] == "f.feature:3"
    assert len(asked) == 1
    assert (model_core.os, model_core.make_relpath_if_possible) == before
