"""The journal's compact test drafts (drafts.py) come back whole from every reader."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import DEMO_ARGS, FORMATTER

from behave_bstack.description.mapping import render_code
from behave_bstack.journal import store as journal
from behave_bstack.journal.drafts import (
    STEP_TEMPLATE,
    Expander,
    expand_steps,
    passed_finish_line,
    start_line,
)


def test_code_is_rebuilt_from_line_ranges_and_text() -> None:
    sources = {"s1": ["Feature: F", "  Background:", "    Given a", "  Scenario: S", "    When b"]}
    parts = [["s1", 1, 3], "# Examples row: x=1", ["s1", 3, 5]]
    assert render_code(parts, sources) == (
        "  Background:\n    Given a\n# Examples row: x=1\n  Scenario: S\n    When b"
    )


def test_an_unknown_source_gives_empty_lines_not_an_error() -> None:
    assert render_code([["s9", 0, 3], "text"], {}) == "\ntext"


def test_steps_take_keyword_and_text_from_the_start_and_times_from_the_finish() -> None:
    steps = expand_steps(
        [["passed", 1000, 1004], ["failed", 1004, 1010, "boom"], ["skipped", None, None]],
        [["Given", "a"], ["When", "b"], ["Then", "c"]],
    )
    assert steps == [
        {"id": "1", "keyword": "Given", "text": "a", "result": "passed", "started_at": 1000,
         "finished_at": 1004, "duration": 4},
        {"id": "2", "keyword": "When", "text": "b", "result": "failed", "started_at": 1004,
         "finished_at": 1010, "duration": 6, "failure": "boom"},
        {"id": "3", "keyword": "Then", "text": "c", "result": "skipped"},
    ]  # fmt: skip


def test_a_start_and_its_finish_expand_to_the_api_shapes() -> None:
    expander = Expander()
    assert expander.expand({"op": "source", "ref": "s1", "body": {"lines": ["Feature: F", "  Scenario: S", "    Given a"]}}) is None  # fmt: skip
    start = expander.expand(
        {
            "seq": 2, "op": "test_start", "ref": "t1",
            "code": [["s1", 1, 3]], "steps": [["Given", "a"]],
            "body": {"name": "S", "file_name": "f.feature", "scopes": ["F"], "started_at": 5},
        }
    )  # fmt: skip
    assert start["body"]["body"] == {"lang": "gherkin", "code": "  Scenario: S\n    Given a"}
    assert "code" not in start and "steps" not in start
    finish = expander.expand(
        {"seq": 3, "op": "test_finish", "ref": "t1", "steps": [["passed", 5, 6]],
         "body": {"result": "passed", "finished_at": 6, "duration_in_ms": 1}}
    )  # fmt: skip
    assert finish["body"]["file_name"] == "f.feature"
    assert finish["body"]["scopes"] == ["F"]
    assert finish["body"]["meta"]["steps"][0]["text"] == "a"
    assert expander.open_tests == {}  # nothing kept once a test is finished


def test_full_form_events_pass_through_unchanged() -> None:
    event = {"seq": 1, "op": "test_finish", "ref": "t1", "body": {"result": "failed"}}
    assert Expander().expand(dict(event)) == event


def test_a_real_run_journal_reads_back_whole(tmp_path: Path) -> None:
    """The reader used by delivery and the CLI sees full drafts; the file stays compact."""
    run_dir = tmp_path / "run"
    writer = journal.JournalWriter(run_dir)
    writer.append("source", {"file": "f.feature", "lines": ["Feature: F", "  Scenario: S"]}, "s1")
    writer.append("test_start", {"name": "S", "started_at": 1}, "t1", code=[["s1", 1, 2]], steps=[])
    writer.append("test_finish", {"result": "passed"}, "t1", steps=[])
    writer.close()
    raw = [json.loads(line) for line in (run_dir / journal.EVENTS).read_text().splitlines()]
    assert [r["op"] for r in raw] == ["source", "test_start", "test_finish"]
    events = journal.read_events(run_dir / journal.EVENTS)
    assert [e["op"] for e in events] == ["test_start", "test_finish"]
    assert events[0]["body"]["body"]["code"] == "  Scenario: S"
    assert events[1]["body"]["meta"] == {"steps": []}


def _lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / journal.EVENTS).read_text().splitlines()]


def test_the_directly_formatted_forms_equal_the_encoded_ones(tmp_path: Path) -> None:
    direct = journal.JournalWriter(tmp_path / "direct")
    direct.append_formatted(start_line, "t7", ["s2", 4, 40], 1795915110805)
    direct.append_template(STEP_TEMPLATE, "t7", 0, 1, 2)
    direct.append_template(STEP_TEMPLATE, "t7", 1, 2, 30)
    direct.append_formatted(passed_finish_line, "t7", 1795915110900, 95, [])
    direct.append_formatted(passed_finish_line, "t8", 1795915110900, 1, ["h1", "h2"])
    direct.close()
    encoded = journal.JournalWriter(tmp_path / "encoded")
    encoded.append("test_start", {"started_at": 1795915110805}, "t7", scenario=["s2", 4, 40])
    encoded.append("step", None, "t7", step=[0, "passed", 1, 2])
    encoded.append("step", None, "t7", step=[1, "passed", 2, 30])
    body = {"result": "passed", "finished_at": 1795915110900, "duration_in_ms": 95}
    encoded.append("test_finish", body, "t7", steps="journaled")
    body = {"result": "passed", "finished_at": 1795915110900, "duration_in_ms": 1}
    encoded.append(
        "test_finish", {**body, "hooks": [{"$ref": "h1"}, {"$ref": "h2"}]}, "t8", steps="journaled"
    )
    encoded.close()
    assert _lines(tmp_path / "direct") == _lines(tmp_path / "encoded")
    assert passed_finish_line(1, "t1", 5, 1, []).endswith(b"\n")
    assert STEP_TEMPLATE.endswith("\n")


def _normalized_events(run_dir: Path) -> list[dict]:
    """The events as readers see them, with every clock reading replaced by 0."""
    times = {"started_at", "finished_at", "duration_in_ms", "duration", "timestamp"}

    def scrub(value):
        if isinstance(value, dict):
            return {k: 0 if k in times else scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return [scrub(e) for e in journal.read_events(run_dir / journal.EVENTS) if e["op"] != "meta"]


def test_a_real_run_reads_the_same_with_and_without_the_direct_forms(
    shop: Path, tmp_path: Path, run_behave, monkeypatch
) -> None:  # noqa: F811 - run_behave is the fixture
    """The demo suite passes, fails and runs hooks: every test is journaled once through
    the direct forms (where they apply) and once through the general encoder."""
    from behave_bstack.recording.tracker import Tracker

    formatted = []
    original = journal.JournalWriter.append_formatted

    def counting(self, make_line, *values):
        formatted.append(make_line.__name__)
        return original(self, make_line, *values)

    monkeypatch.setattr(journal.JournalWriter, "append_formatted", counting)
    runs = {}
    for direct in (True, False):
        monkeypatch.setattr(Tracker, "direct_forms", direct)
        journal_dir = tmp_path / f"journal-{direct}"
        args = ["-f", FORMATTER, "--no-summary", *DEMO_ARGS]
        run = run_behave(args, shop, {"BSTACK_JOURNAL_DIR": str(journal_dir)}, in_process=True)
        assert "journaled" in run.stderr, run.stderr
        (run_dir,) = journal_dir.iterdir()
        runs[direct] = _normalized_events(run_dir)
    assert {"start_line", "passed_finish_line"} <= set(formatted)
    assert formatted.count("start_line") == sum(e["op"] == "test_start" for e in runs[True])
    assert any(e["body"].get("result") == "failed" for e in runs[True] if e["op"] == "test_finish")
    assert runs[True] == runs[False]
