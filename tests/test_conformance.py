"""Faithful mapping: what behave reports for tests/conformance_features equals what the
official Gherkin compiler (gherkin-official) makes of the same files, pickle by pickle."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from helpers import (
    BEHAVE_13,
    CONFORMANCE,
    FORMATTER,
    REPO,
    assert_delivery_clean,
    by_location,
    reported_tests,
    run_behave,
    server_env,
)

from behave_bstack.emulator.server import TraServer

gherkin = pytest.importorskip("gherkin")
pytestmark = pytest.mark.skipif(not BEHAVE_13, reason="the fixtures use Rules (behave 1.3)")

RELATIVE_DIR = CONFORMANCE.relative_to(REPO).as_posix()
# behave's status of each scenario that does not pass (tests/conformance_features/README.md)
NOT_PASSED = {
    "failures.feature:10": "failed",
    "failures.feature:15": "error",
    "failures.feature:19": "error",
    "failures.feature:24": "error",
    "failures.feature:29": "skipped",
    "outlines.feature:50": "failed",
}
# behave status -> TRA result, as the table in behave_bstack/mapping.py's docstring says
TABLE = {"passed": "passed", "failed": "failed", "error": "failed", "skipped": "skipped"}
# the steps of failures.feature, as behave runs them: (line, [step results])
FAILURE_STEPS = {
    4: ["passed"] * 4,
    10: ["passed", "failed", "skipped"],
    15: ["failed", "skipped"],
    19: ["passed", "failed", "skipped"],  # undefined
    24: ["failed", "skipped"],  # pending
    29: ["skipped"],  # skipped in before_scenario: never ran
}
_BEHAVE_SUFFIX = re.compile(r" -- @\d+\.\d+( .*)?$")
_DEDUP_SUFFIX = re.compile(r" #\d+$")


def name_base(name: str) -> str:
    """Our test name without behave's outline suffix and without our ' #N' de-dup suffix."""
    return _BEHAVE_SUFFIX.sub("", _DEDUP_SUFFIX.sub("", name)).strip()


def compile_file(path: Path) -> tuple[dict, list[dict]]:
    document = gherkin.Parser().parse(path.read_text(encoding="utf-8"))
    document["uri"] = f"{RELATIVE_DIR}/{path.name}"
    return document, gherkin.Compiler().compile(document)


def scopes_by_node(document: dict) -> dict[tuple[str, str], list[str]]:
    """(uri, scenario AST node id) -> [feature name] or [feature name, rule name]."""
    feature, uri = document["feature"], document["uri"]
    found: dict[tuple[str, str], list[str]] = {}
    for child in feature["children"]:
        if "scenario" in child:
            found[uri, child["scenario"]["id"]] = [feature["name"]]
        elif "rule" in child:
            rule = child["rule"]
            for inner in rule["children"]:
                if "scenario" in inner:
                    found[uri, inner["scenario"]["id"]] = [feature["name"], rule["name"]]
    return found


def reparse_step(text: str) -> dict:
    """Our meta.steps text (step text plus its table or doc string, in Gherkin form)
    compiled back by gherkin-official: it must be valid Gherkin for the same step."""
    first, *argument = text.split("\n")
    source = "Feature: F\n  Scenario: S\n    Given " + first + "\n"
    source += "".join("    " + line + "\n" for line in argument)
    document = gherkin.Parser().parse(source)
    document["uri"] = "reparsed.feature"
    (pickle,) = gherkin.Compiler().compile(document)
    (step,) = pickle["steps"]
    return step


def comparable_argument(step: dict) -> dict | None:
    argument = step.get("argument")
    if argument is None:
        return None
    if "dataTable" in argument:
        return {"table": [[c["value"] for c in r["cells"]] for r in argument["dataTable"]["rows"]]}
    return {"doc": argument["docString"]["content"]}  # behave drops the media type


@pytest.fixture(scope="module")
def conformance(tmp_path_factory) -> dict:
    """One behave run over the conformance fixtures, from the repository root (so that
    vc_filepath is known), journaling in a temporary directory."""
    tmp = tmp_path_factory.mktemp("conformance")
    with TraServer() as server:
        rc, out, err = run_behave(
            ["-f", FORMATTER, "-f", "null", RELATIVE_DIR],
            REPO,
            server_env(server, tmp / "journal"),
        )
        assert rc == 1, out + err  # some scenarios fail on purpose
        assert_delivery_clean(server)
        tests = by_location(reported_tests(server))
    pickles, scopes = [], {}
    for path in sorted(CONFORMANCE.glob("*.feature")):
        document, compiled = compile_file(path)
        pickles += compiled
        scopes.update(scopes_by_node(document))
    return {"tests": tests, "pickles": pickles, "scopes": scopes}


def _test_of(conformance: dict, pickle: dict):
    return conformance["tests"][f"{pickle['uri']}:{pickle['location']['line']}"]


def test_one_test_run_per_pickle(conformance) -> None:
    pickles, tests = conformance["pickles"], conformance["tests"]
    assert len(pickles) == 35
    expected = sorted(f"{p['uri']}:{p['location']['line']}" for p in pickles)
    assert sorted(tests) == expected  # by_location already refused duplicates


def test_names_lines_and_steps_match_the_pickles(conformance) -> None:
    for pickle in conformance["pickles"]:
        test = _test_of(conformance, pickle)
        start, finish = test.start, test.finish
        assert name_base(start["name"]) == " ".join(pickle["name"].split()), start["name"]
        assert start["location"].endswith(f":{pickle['location']['line']}")
        steps = finish["meta"]["steps"]
        assert [s["text"].split("\n")[0] for s in steps] == [s["text"] for s in pickle["steps"]]
        for mine, theirs in zip(steps, pickle["steps"], strict=True):
            again = reparse_step(mine["text"])
            assert again["text"] == theirs["text"]
            assert comparable_argument(again) == comparable_argument(theirs), mine["text"]


def test_identity_fields(conformance) -> None:
    for pickle in conformance["pickles"]:
        start = _test_of(conformance, pickle).start
        assert start["file_name"] == pickle["uri"]
        assert start["vc_filepath"] == pickle["uri"]  # the repository root is the cwd here
        assert "\\" not in start["file_name"]
        assert start["scopes"] == conformance["scopes"][pickle["uri"], pickle["astNodeIds"][0]]
        assert start["tags"] == [t["name"].removeprefix("@") for t in pickle["tags"]]
        assert start["body"]["lang"] == "gherkin" and start["body"]["code"].strip()
        assert _test_of(conformance, pickle).finish["scopes"] == start["scopes"]


def test_outline_row_names_are_unique_within_a_feature(conformance) -> None:
    names = Counter((t.start["file_name"], t.start["name"]) for t in conformance["tests"].values())
    assert [key for key, count in names.items() if count > 1] == []


def test_results_follow_the_mapping_table(conformance) -> None:
    for location, test in conformance["tests"].items():
        status = NOT_PASSED.get(location.rsplit("/", 1)[1], "passed")
        assert test.finish["result"] == TABLE[status], (location, test.finish)
        if TABLE[status] == "failed":
            assert test.finish["failure"][0]["backtrace"]
        else:
            assert "failure" not in test.finish


def test_step_results_and_steps_that_never_ran(conformance) -> None:
    for line, expected in FAILURE_STEPS.items():
        test = conformance["tests"][f"{RELATIVE_DIR}/failures.feature:{line}"]
        steps = test.finish["meta"]["steps"]
        assert [s["result"] for s in steps] == expected, line
        for step in steps:
            if step["result"] == "failed":
                assert step["failure"]
    for test in conformance["tests"].values():
        for step in test.finish["meta"]["steps"]:
            if "started_at" not in step:  # behave never ran it
                assert step["result"] == "skipped", (test.start["location"], step)
