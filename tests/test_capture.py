"""Pieces of output capture that the behave runs in test_context.py do not isolate."""

from __future__ import annotations

import io

from behave_bstack.recording.capture import Sink, _Tee


def test_the_tee_writes_through_and_copies_the_text() -> None:
    stream, seen = io.StringIO(), []
    tee = _Tee(stream, lambda level, text: seen.append((level, text)), "INFO")
    assert tee.write("hello\n") == 6
    assert stream.getvalue() == "hello\n"
    assert seen == [("INFO", "hello\n")]
    assert tee.getvalue() == "hello\n"  # anything else is the stream's


def test_the_tee_follows_the_streams_encoding_through_reconfigure() -> None:
    raw = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    tee = _Tee(raw, lambda *_: None, "INFO")
    assert (tee.encoding, tee.errors) == ("latin-1", "strict")
    tee.reconfigure(encoding="utf-8", errors="replace")
    assert (tee.encoding, tee.errors) == ("utf-8", "replace") == (raw.encoding, raw.errors)


def test_a_stream_without_an_encoding_has_none_through_the_tee() -> None:
    tee = _Tee(object(), lambda *_: None, "INFO")
    assert getattr(tee, "encoding", "absent") == "absent"


def test_a_sink_keeps_one_entry_per_line_and_drains_empty_afterwards() -> None:
    sink = Sink()
    assert sink.drain() == []
    sink.add_text(1, "INFO", "a")
    sink.add_text(2, "INFO", "b\nc")
    assert sink.drain() == [(1, "INFO", "ab"), (2, "INFO", "c")]
    assert sink.drain() == []
