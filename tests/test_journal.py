"""The journal on disk: events and acks round trips, torn lines, locks, modes, reports."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import faultkit as fk
import pytest

from behave_bstack.delivery.dispatch import Delivery
from behave_bstack.journal import store as journal


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writer_reader_round_trip(tmp_path):
    writer = journal.JournalWriter(tmp_path / "run")
    odd = "caf\u00e9 \u2603 \U0001f600 lone \ud800 surrogate, NUL \x00, newline \n end"
    assert writer.append("meta", {"pid": 1}) == 1
    assert writer.append("test_start", {"name": odd}, "t1") == 2
    assert writer.append("end") == 3
    writer.close()
    records = journal.read_all(tmp_path / "run" / journal.EVENTS)
    assert records == [
        {"seq": 1, "op": "meta", "body": {"pid": 1}},
        {"seq": 2, "op": "test_start", "ref": "t1", "body": {"name": odd}},
        {"seq": 3, "op": "end"},
    ]
    # One line per event, whatever the text holds.
    assert (tmp_path / "run" / journal.EVENTS).read_bytes().count(b"\n") == 3


def test_a_second_writer_cannot_take_over_a_journal(tmp_path):
    journal.JournalWriter(tmp_path / "run").close()
    with pytest.raises(FileExistsError):
        journal.JournalWriter(tmp_path / "run")


def test_reader_sees_only_complete_lines_and_skips_torn_ones(tmp_path):
    path = tmp_path / "events.jsonl"
    reader = journal.LineReader(path)
    assert reader.read_new() == []  # no file yet
    path.write_bytes(b'{"seq":1,"op":"meta"}\n{"seq":2,"op":"te')
    assert reader.read_new() == [{"seq": 1, "op": "meta"}]
    assert reader.read_new() == []
    with open(path, "ab") as handle:
        handle.write(b'st_start","ref":"t1"}\n')
    assert reader.read_new() == [{"seq": 2, "op": "test_start", "ref": "t1"}]
    # A line torn by a crash and later terminated is skipped; what follows is read.
    with open(path, "ab") as handle:
        handle.write(b'{"seq":3,"op":"lo\n{"seq":4,"op":"end"}\n')
    assert reader.read_new() == [{"seq": 4, "op": "end"}]
    assert journal.read_all(path) == [
        {"seq": 1, "op": "meta"},
        {"seq": 2, "op": "test_start", "ref": "t1"},
        {"seq": 4, "op": "end"},
    ]


def test_acks_round_trip_and_the_last_word_wins(tmp_path):
    (tmp_path / "run").mkdir()
    log = journal.AckLog(tmp_path / "run")
    log.record(2, ok=True, id="b" * 40)
    log.record(3, ok=False, status=422, error="bad")
    log.record(3, ok=True, id="u-3")
    log.close()
    with open(tmp_path / "run" / journal.ACKS, "ab") as handle:
        handle.write(b'{"seq":9,"o')  # torn: ignored
    assert journal.load_acks(tmp_path / "run") == {
        2: {"seq": 2, "ok": True, "id": "b" * 40},
        3: {"seq": 3, "ok": True, "id": "u-3"},
    }


def test_appender_continues_the_sequence(tmp_path):
    run_dir = fk.write_journal(tmp_path / "run", tests=1, ended=False)
    last = fk.events(run_dir)[-1]["seq"]
    appender = journal.Appender(run_dir, last)
    assert appender.append({"op": "end", "seq": 999}) == last + 1
    appender.close()
    assert fk.events(run_dir)[-1] == {"op": "end", "seq": last + 1}


def test_appender_after_a_torn_last_line(tmp_path):
    run_dir = fk.write_journal(tmp_path / "run", tests=1, ended=False)
    last = fk.events(run_dir)[-1]["seq"]
    with open(run_dir / journal.EVENTS, "ab") as handle:
        handle.write(b'{"seq":99,"op":"test_fin')  # behave died mid-write
    appender = journal.Appender(run_dir, last)
    appender.append({"op": "end"})
    appender.close()
    assert fk.events(run_dir)[-1] == {"op": "end", "seq": last + 1}


def test_ack_log_after_a_torn_last_line(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / journal.ACKS).write_bytes(b'{"seq":1,"ok":true}\n{"seq":2,"o')
    log = journal.AckLog(tmp_path / "run")
    log.record(3, ok=True)
    log.close()
    assert 3 in journal.load_acks(tmp_path / "run")


def test_try_lock_is_exclusive(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    held = journal.try_lock(run_dir)
    assert held is not None
    assert journal.try_lock(run_dir) is None  # same process, another open file
    probe = textwrap.dedent(
        f"""
        from behave_bstack.journal import store as journal
        print(journal.try_lock({str(run_dir)!r}) is None)
        """
    )
    other = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30
    )
    assert other.stdout.strip() == "True"
    held.close()
    again = journal.try_lock(run_dir)
    assert again is not None
    again.close()


def test_a_second_delivery_waits_for_the_lock_holder(tmp_path):
    """The uploader holds the lock: `upload` must not deliver the same journal."""
    run_dir = fk.write_journal(tmp_path / "run", tests=1)
    held = journal.try_lock(run_dir)
    try:
        assert journal.try_lock(run_dir) is None
    finally:
        held.close()


def test_files_and_directories_are_owner_only_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        writer = journal.JournalWriter(tmp_path / "run")
        writer.append("meta", {})
        attachment = writer.attachment_path("00001-a.png")
        writer.close()
        journal.AckLog(tmp_path / "run").close()
        journal.write_report(tmp_path / "run", {"pending": 0})
        journal.try_lock(tmp_path / "run").close()
        journal.Appender(tmp_path / "run", 1).close()
    finally:
        os.umask(old)
    run_dir = tmp_path / "run"
    assert mode(run_dir) == 0o700 and mode(attachment.parent) == 0o700
    for name in (journal.EVENTS, journal.ACKS, journal.REPORT, journal.LOCK):
        assert mode(run_dir / name) == 0o600, name


def test_report_is_replaced_whole(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert journal.read_report(run_dir) is None
    journal.write_report(run_dir, {"pending": 3})
    journal.write_report(run_dir, {"pending": 0, "text": "\u00e9"})
    assert journal.read_report(run_dir) == {"pending": 0, "text": "\u00e9"}
    assert sorted(p.name for p in run_dir.iterdir()) == [journal.REPORT]
    (run_dir / journal.REPORT).write_text("{not json", encoding="utf-8")
    assert journal.read_report(run_dir) is None


def test_run_directories_lists_journals_only(tmp_path):
    assert list(journal.run_directories(tmp_path / "missing")) == []
    for name in ("b-run", "a-run"):
        journal.JournalWriter(tmp_path / name).close()
    (tmp_path / "stray").mkdir()
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    assert [p.name for p in journal.run_directories(tmp_path)] == ["a-run", "b-run"]


def test_run_ids_sort_by_time_and_differ():
    first, second = journal.new_run_id(), journal.new_run_id()
    assert first != second
    stamp, pid, suffix = first.rsplit("-", 2)
    assert len(stamp) == len("20250101-000000") and pid == str(os.getpid())
    assert len(suffix) == 4 and int(suffix, 16) >= 0


def test_a_journal_delivered_twice_sends_nothing_twice(tmp_path):
    """Acks are the memory of a journal: a new Delivery on a finished journal has nothing
    to send, and counts what was delivered before."""
    from behave_bstack.emulator import TraServer

    run_dir = fk.write_journal(tmp_path / "run", tests=3)
    with TraServer(username="fk_user", access_key="fk_key") as srv:
        first = fk.deliver(run_dir, fk.options_for(srv))
        assert first["pending"] == 0
        count = len(srv.calls)
        again = Delivery(run_dir, None)
        again.load_new()
        assert again.settled() and again.events == {}
        assert again.report()["delivered"] == first["delivered"]
        assert fk.deliver(run_dir, fk.options_for(srv))["pending"] == 0
        assert len(srv.calls) == count


# --- the writer's mapped window (JournalWriter) ----------------------------------------


def test_a_live_journal_reads_up_to_its_unwritten_zero_filled_end(tmp_path):
    writer = journal.JournalWriter(tmp_path / "run")
    path = tmp_path / "run" / journal.EVENTS
    reader = journal.LineReader(path)
    writer.append("meta", {"pid": 1})
    assert path.stat().st_size == journal.WINDOW  # the window, zero-filled past the record
    assert reader.read_new() == [{"seq": 1, "op": "meta", "body": {"pid": 1}}]
    writer.append("end")
    assert reader.read_new() == [{"seq": 2, "op": "end"}]
    writer.close()
    assert path.read_bytes().count(b"\0") == 0
    assert path.read_bytes().endswith(b'"op":"end"}\n')


def test_a_record_still_being_copied_is_read_once_complete(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"seq":1,"op":"meta"}\n{"seq":2,"o' + b"\0" * 64)
    reader = journal.LineReader(path)
    assert reader.read_new() == [{"seq": 1, "op": "meta"}]
    with open(path, "r+b") as handle:
        handle.seek(len(b'{"seq":1,"op":"meta"}\n{"seq":2,"o'))
        handle.write(b'p":"end"}\n')
    assert reader.read_new() == [{"seq": 2, "op": "end"}]


def test_records_cross_windows_and_big_ones_are_written_directly(tmp_path):
    writer = journal.JournalWriter(tmp_path / "run")
    big = "x" * (journal.WINDOW // 2)  # a big feature file's lines: one plain write
    texts = [f"record {n} " + "y" * 900 for n in range(2500)]  # ~2.3 MiB: three windows
    for n, text in enumerate(texts):
        writer.append("logs", {"message": text})
        if n == 1000:
            writer.append("source", {"lines": [big]})
    writer.close()
    records = journal.read_all(tmp_path / "run" / journal.EVENTS)
    assert [r["seq"] for r in records] == list(range(1, 2502))
    assert [r["body"]["message"] for r in records if r["op"] == "logs"] == texts
    assert records[1001]["body"]["lines"] == [big]


def test_without_mapping_every_record_is_still_written(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("this file system cannot map files")

    monkeypatch.setattr(journal.mmap, "mmap", refuse)
    writer = journal.JournalWriter(tmp_path / "run")
    for n in range(3):
        writer.append("logs", {"n": n})
    path = tmp_path / "run" / journal.EVENTS
    assert [r["body"]["n"] for r in journal.read_all(path)] == [0, 1, 2]
    assert b"\0" not in path.read_bytes()  # no window was left behind
    writer.close()


def test_a_sigkilled_writer_loses_nothing_and_the_journal_can_be_closed_later(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from behave_bstack.journal import store as journal
        writer = journal.JournalWriter(Path({str(tmp_path / "run")!r}))
        for n in range(500):
            writer.append("logs", {{"n": n}})
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent.parent)
    assert proc.returncode == -9
    path = tmp_path / "run" / journal.EVENTS
    assert path.read_bytes().endswith(b"\0")  # killed with its window still mapped
    assert [r["body"]["n"] for r in journal.read_all(path)] == list(range(500))
    appender = journal.Appender(tmp_path / "run", 500)
    appender.append({"op": "end"})
    appender.close()
    records = journal.read_all(path)
    assert len(records) == 501 and records[-1] == {"op": "end", "seq": 501}
    assert b"\0" not in path.read_bytes()


def test_passed_step_records_read_without_the_json_decoder_read_as_json(tmp_path):
    from behave_bstack.journal.drafts import STEP_TEMPLATE

    writer = journal.JournalWriter(tmp_path)
    writer.append_template(STEP_TEMPLATE, "t12", 0, 1795915110805, 1795915110806)
    writer.append("step", None, "t12", step=[1, "failed", 5, 6, 'boom "x", ]}'])
    writer.append("step", None, "t12", step=[2, "passed", 7, 8])  # the encoder's own form
    writer.close()
    lines = (tmp_path / journal.EVENTS).read_bytes().splitlines()
    assert [journal._passed_step(line) for line in lines[1:]] == [None, None]
    fast = journal._passed_step(lines[0])
    assert fast == __import__("json").loads(lines[0])
    assert journal.read_all(tmp_path / journal.EVENTS) == [
        __import__("json").loads(line) for line in lines
    ]


def test_records_after_an_interrupted_tests_steps_take_new_sequence_numbers(tmp_path):
    """Step records reach no reader's consumer, but the closing records that `upload`
    appends still follow them: no sequence number is used twice."""
    from behave_bstack.journal.drafts import STEP_TEMPLATE

    writer = journal.JournalWriter(tmp_path)
    writer.append("meta", {"owns_build": True})
    writer.append("build_start", {"name": "b"}, "build")
    writer.append("test_start", {"name": "t", "started_at": 100}, "t1")
    writer.append_template(STEP_TEMPLATE, "t1", 0, 100, 150)
    writer.append_template(STEP_TEMPLATE, "t1", 1, 150, 170)
    writer._fd, fd = -1, writer._fd  # the process dies: the file is not closed
    os.close(fd)
    delivery = Delivery(tmp_path, None)
    delivery.load_new()
    assert delivery.close_interrupted("Interrupted") == 2
    seqs = [r["seq"] for r in journal.read_all(tmp_path / journal.EVENTS)]
    assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs)
    finish = next(
        e for e in journal.read_events(tmp_path / journal.EVENTS) if e["op"] == "test_finish"
    )
    assert [s["result"] for s in finish["body"]["meta"]["steps"]] == ["passed", "passed"]
    assert finish["body"]["duration_in_ms"] == 70
