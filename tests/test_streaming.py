"""Issue #22: the uploader, `status` and `show` read a journal in bounded pieces, and what
they remember across the whole run is small.  The figures are in benchmarks/bench_memory.py;
these tests hold the behaviour: a journal read or delivered in small pieces gives exactly
what one read of it gives, and what is held at once stays bounded."""

from __future__ import annotations

import gc
import io
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import faultkit as fk
import pytest
from helpers import clean_env

from behave_bstack.command import journal_view, show_view
from behave_bstack.command import main as cli
from behave_bstack.delivery import dispatch
from behave_bstack.delivery.ids import ServerIds
from behave_bstack.delivery.links import FAILED
from behave_bstack.emulator import TraServer
from behave_bstack.journal import acks as ack_index
from behave_bstack.journal import store as journal
from behave_bstack.journal.catalog import FeatureCatalog
from behave_bstack.origin import host

REPO = Path(__file__).resolve().parents[1]
NO_RULES = ["--exclude", "rules.feature"] if host.behave_version().startswith("1.2") else []


def offline_run(root: Path, *args: str) -> Path:
    """Run behave with the reporter and no credentials in root; its journal directory."""
    env = clean_env({"BSTACK_JOURNAL_DIR": str(root / "journal")})
    cmd = [sys.executable, "-m", "behave", "-f", fk.FORMATTER, *args, "features"]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert "nothing sent" in proc.stderr, proc.stderr
    return fk.only_run_dir(root / "journal")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """This repository's features (rules, outlines, hooks, logs, failures), journaled."""
    root = tmp_path_factory.mktemp("demo")
    shutil.copytree(REPO / "features", root / "features")
    return offline_run(root, *NO_RULES)


def copy_run(run_dir: Path, where: Path) -> Path:
    target = where / "journal" / run_dir.name
    target.parent.mkdir(parents=True)
    target.mkdir()
    shutil.copy(run_dir / journal.EVENTS, target / journal.EVENTS)
    return target


def window(monkeypatch, events: int, read_limit: int) -> list[int]:
    """Delivery holds at most `events` unsettled events (and what one read adds) and reads
    `read_limit` bytes at a time; returns a list that gets the events held after each
    record taken."""
    monkeypatch.setattr(dispatch, "WINDOW", events)
    monkeypatch.setattr(journal, "READ_LIMIT", read_limit)
    held: list[int] = []
    take = dispatch.Delivery._take

    def counting(self, record):
        take(self, record)
        held.append(len(self.events))

    monkeypatch.setattr(dispatch.Delivery, "_take", counting)
    return held


# --- reading in pieces --------------------------------------------------------------------


def test_a_journal_read_in_pieces_gives_the_records_of_one_read(demo_run):
    path = demo_run / journal.EVENTS
    whole, events = journal.read_all(path), journal.read_events(path)
    assert any(r["op"] == "source" for r in whole) and any(r["op"] == "step" for r in whole)
    for limit in (1, 7, 300, 5000):
        reader, pieces = journal.EventReader(path), []
        while True:
            pieces += reader.read_new(limit)
            if reader.at_end:
                break
        assert pieces == events, limit
        assert reader.last_seq == whole[-1]["seq"]
    assert list(journal.iter_records(path)) == whole
    assert list(journal.iter_events(path)) == events


def test_the_end_of_a_journal_is_told_from_its_last_record(tmp_path, demo_run):
    assert journal.ends_with_end(demo_run / journal.EVENTS)
    open_run = fk.write_journal(tmp_path / "open", tests=2, ended=False)
    assert not journal.ends_with_end(open_run / journal.EVENTS)
    # A writer killed right after its "end": the rest of its window is zero bytes.
    writer = journal.JournalWriter(tmp_path / "killed")
    writer.append("meta", {})
    writer.append("end")
    assert (tmp_path / "killed" / journal.EVENTS).read_bytes().endswith(b"\0")
    assert journal.ends_with_end(tmp_path / "killed" / journal.EVENTS)
    assert not journal.ends_with_end(tmp_path / "missing" / journal.EVENTS)


def test_only_one_feature_file_is_held_and_none_after_the_end(demo_run):
    reader = journal.EventReader(demo_run / journal.EVENTS)
    sources = 0
    while not reader.at_end:
        for record in journal.LineReader.read_new(reader, 200):
            sources += record.get("op") == "source"
            reader._expander.expand(record)
            assert len(reader._expander.catalogs) <= 1 and len(reader._expander.sources) <= 1
    assert sources > 1
    assert reader._expander.catalogs == {} and reader._expander.sources == {}


# --- delivering in a small window ---------------------------------------------------------


def normalized_calls(srv: TraServer) -> list[str]:
    """The calls the server accepted, with its ids replaced by what they stand for (the run
    whose start got the id, the build), in a stable order."""
    names = {}
    for kind, runs in (("test", srv.state.tests.values()), ("hook", srv.state.hooks.values())):
        for run in runs:
            names[run.uuid] = f"{kind}:{run.start.get('name')}@{run.start.get('started_at')}"
    names[fk.only_build(srv).id] = "BUILD"

    def clean(value):
        if isinstance(value, str):
            for server_id, name in names.items():
                value = value.replace(server_id, name)
            return value
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    calls = [
        json.dumps([c.op, clean(c.path), clean(c.body)], sort_keys=True)
        for c in fk.accepted_calls(srv)
    ]
    return sorted(calls)


def deliver_copy(run_dir: Path, where: Path, **options) -> tuple[dict, list[str], Path]:
    """Deliver a copy of run_dir to a fresh server: the report, the calls, the copy."""
    with TraServer(username="fk_user", access_key="fk_key") as srv:
        copy = copy_run(run_dir, where)
        report = fk.deliver(copy, fk.options_for(srv, **options))
        fk.assert_exactly_once(srv, copy)
        return report, normalized_calls(srv), copy


def test_a_journal_delivered_in_a_small_window_sends_exactly_the_same_calls(
    tmp_path, demo_run, monkeypatch
):
    held = window(monkeypatch, 10**9, 10**9)  # everything at once, as before issue #22
    report, whole, _ = deliver_copy(demo_run, tmp_path / "whole")
    assert report["pending"] == 0 and max(held) > 50
    held = window(monkeypatch, 3, 300)
    report, small, copy = deliver_copy(demo_run, tmp_path / "small")
    assert report["pending"] == 0 and report["ended"] and report["stopped"] is None
    # 3 events, plus what one read of 300 bytes adds (a record is 30 bytes or more).
    assert max(held) <= 3 + 10
    assert small == whole
    assert journal.read_all(copy / journal.EVENTS) == journal.read_all(demo_run / journal.EVENTS)


def test_an_interrupted_run_is_closed_from_beyond_the_window(tmp_path, monkeypatch):
    """The closing needs the journal's end: what is past the window is read ahead."""
    run_dir = fk.write_journal(tmp_path / "run", tests=40, ended=False, build_finish=False)
    appender = journal.Appender(run_dir, fk.events(run_dir)[-1]["seq"])
    common = {"file_name": "features/f.feature", "scopes": ["feature"]}
    body = {"name": "open", **common, "started_at": 1_764_000_000_100}
    appender.append({"op": "test_start", "ref": "t99", "body": body})
    appender.close()
    journaled = len(journal.read_all(run_dir / journal.EVENTS))
    closings = []
    for events, read_limit in ((10**9, 10**9), (3, 300)):
        window(monkeypatch, events, read_limit)
        report, calls, copy = deliver_copy(run_dir, tmp_path / f"w{events}")
        assert report["pending"] == 0 and report["ended"]
        closings.append((journal.read_all(copy / journal.EVENTS)[journaled:], calls))
    (closed, whole), (closed_small, small) = closings
    assert [r["op"] for r in closed] == ["test_finish", "build_finish", "end"]
    assert closed_small == closed and small == whole


def test_what_lies_past_the_window_counts_as_pending(tmp_path, monkeypatch):
    run_dir = fk.write_journal(tmp_path / "run", tests=20)
    sendable = [e for e in fk.events(run_dir) if e["op"] in dispatch.SENDABLE]
    window(monkeypatch, 3, 300)
    with TraServer(username="fk_user", access_key="fk_key") as srv:
        srv.faults.unauthorized(True)
        report = fk.deliver(run_dir, fk.options_for(srv))
    assert "refused the credentials" in report["stopped"]
    assert report["pending"] == len(sendable) == journal_view.read_state(run_dir).pending
    assert report["ended"]


# --- what is remembered ---------------------------------------------------------------------


def test_the_ack_index_says_what_load_acks_says(tmp_path):
    (tmp_path / "run").mkdir()
    log = journal.AckLog(tmp_path / "run")
    build, test = "b" * 40, str(uuid.uuid4())
    log.record(2, ok=True, id=build)
    log.record(3, ok=False, status=422, error="bad")
    log.record(3, ok=True, id=test)  # the last word wins
    log.record(4, ok=True)
    log.record(5, ok=True, id="x-5")
    log.record(5, ok=False, status=400, error="no")
    log.record(10**9, ok=True)  # far beyond the others: not a gigabyte of index
    log.close()
    with open(tmp_path / "run" / journal.ACKS, "ab") as handle:
        handle.write(b'{"seq":9,"o')  # torn: ignored
    loaded = journal.load_acks(tmp_path / "run")
    index = ack_index.AckIndex(tmp_path / "run")
    for seq in range(12):
        ack = loaded.get(seq)
        if ack is None:
            assert index.status(seq) == ack_index.UNKNOWN, seq
        elif ack["ok"]:
            assert index.status(seq) == ack_index.OK, seq
        else:
            assert index.status(seq) == ack_index.REFUSED, seq
            assert index.refusal(seq) == ack["error"]
    assert index.status(10**9) == ack_index.OK and len(index) == len(loaded) == 5
    assert index.ids == {2: build, 3: test}
    assert index.take_id(3) == test and index.take_id(3) is None
    light = ack_index.AckIndex(tmp_path / "run", keep_ids=False)
    assert light.ids == {} and light.first == (2, build)


def test_server_ids_are_packed_and_given_back_exactly():
    ids = ServerIds()
    test, hook = str(uuid.uuid4()), str(uuid.uuid4())
    ids["t12"] = test
    ids["h12"] = hook
    ids["t7"] = "not-a-uuid"
    ids["t8"] = test.upper()  # not TRA's form: kept as it came
    ids["build"] = "b" * 40
    ids["t9"] = FAILED
    assert ids.get("t12") == test and ids.get("h12") == hook and ids["t7"] == "not-a-uuid"
    assert ids.get("t8") == test.upper() and ids.get("build") == "b" * 40
    assert ids.get("t9") is FAILED and ids.get("t012") is None and ids.get("t13") is None
    assert "t12" in ids and "t13" not in ids
    assert len(ids._slots["t"].data) <= 16 * 64  # 16 bytes a number
    ids["t12"] = FAILED  # a refused start, after all
    assert ids.get("t12") is FAILED
    ids["t12"] = None
    assert ids.get("t12") is None
    ids["t5000"] = test
    assert ids.get("t5000") == test and ids.get("t12") is None


# --- status and show ------------------------------------------------------------------------


def test_status_read_in_small_pieces_says_the_same(demo_run, monkeypatch):
    whole = journal_view.status_record(journal_view.read_state(demo_run))
    monkeypatch.setattr(journal, "READ_LIMIT", 100)
    assert journal_view.status_record(journal_view.read_state(demo_run)) == whole
    assert whole["tests"] > 10


def show(run_dir: Path, *args: str) -> str:
    out = io.StringIO()
    env = {"BSTACK_JOURNAL_DIR": str(run_dir.parent)}
    cli.main(["show", *args, run_dir.name], stdout=out, stderr=io.StringIO(), environ=env)
    return out.getvalue()


def count_blocks(monkeypatch) -> list[int]:
    """A list that gets the number of runs of each block show prints."""
    blocks: list[int] = []
    flush = show_view._flush

    def counting(nodes, *args):
        blocks.append(len(nodes))
        return flush(nodes, *args)

    monkeypatch.setattr(show_view, "_flush", counting)
    return blocks


def test_show_prints_a_feature_at_a_time_the_tree_it_printed_whole(demo_run, monkeypatch):
    blocks = count_blocks(monkeypatch)
    streamed = show(demo_run, "--logs")
    features = streamed.count("\n  Feature: ")
    assert features >= 3 and len(blocks) == features
    state = journal_view.read_state(demo_run)
    assert max(blocks) < state.tests + state.hooks  # never every run at once
    # One block for the whole journal: the tree as it was printed before it streamed.
    blocks.clear()
    monkeypatch.setattr(show_view, "_starts_block", lambda scopes, top: False)
    assert show(demo_run, "--logs") == streamed and len(blocks) == 1


def test_show_of_many_features_holds_one_at_a_time(tmp_path, monkeypatch):
    root = fk.write_suite(tmp_path, 30, features=3)
    run_dir = offline_run(root)
    blocks = count_blocks(monkeypatch)
    out = show(run_dir)
    assert [line for line in out.splitlines() if "Feature:" in line] == [
        f"  Feature: feature {f:02d}" for f in range(3)
    ]
    assert blocks == [20, 20, 20]  # 10 tests and their before_scenario hooks each
    for i in range(30):
        scenario = out.index(f"Scenario: {fk.scenario_name(i)} - passed")
        assert out.index(f"Feature: feature {i // 10:02d}") < scenario
        assert out.index(f"      hook before_scenario: {fk.scenario_name(i)}", scenario)
    assert "30 tests (30 passed); 30 hook runs (30 passed)" in out


def test_a_feature_let_go_is_freed_at_once_not_by_the_cyclic_collector():
    """A parsed feature and its scenarios refer to each other: left to the collector, the
    uploader held a few of them at a time (its peak grew with the run)."""
    lines = ["Feature: many", ""]
    for i in range(200):
        lines += [f"  Scenario: s{i}", f"    Given step {i} passes", ""]
    garbage = {}
    for release in (False, True, False, True):  # (the first of each warms the imports)
        gc.collect()
        gc.disable()
        try:
            catalog = FeatureCatalog({"file": "f.feature", "lines": lines})
            assert catalog.describe(2, 9)[0]["name"] == "s2"
            if release:
                catalog.release()
            del catalog
            garbage[release] = gc.collect()
        finally:
            gc.enable()
    assert garbage[False] > 200 * 3 and garbage[True] < 20
