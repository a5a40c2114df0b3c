"""The journal's compact test drafts (drafts.py) come back whole from every reader."""

from __future__ import annotations

import json
from pathlib import Path

from behave_bstack import journal
from behave_bstack.drafts import Expander, expand_steps, render_code


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
