"""From a journal draft to the body sent: times become ISO text, then limits apply."""

from __future__ import annotations

import pytest

from behave_bstack.base.clock import iso_from_epoch_ms
from behave_bstack.delivery.finalize import _IsoCache, finalize, iso_times

MOMENT = 1_795_913_866_547  # epoch ms


def test_iso_text_reuses_the_second_and_stays_exact_across_seconds():
    iso = _IsoCache().text
    # within a second, across its boundaries, back in time, before the epoch
    moments = [MOMENT, MOMENT + 1, MOMENT + 452, MOMENT + 453, MOMENT - 548, MOMENT, 0, -1, 999]
    for moment in moments:
        assert iso(moment) == iso_from_epoch_ms(moment)


def test_iso_text_of_the_same_second_is_not_looked_up_again(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "behave_bstack.delivery.finalize.iso_from_epoch_ms",
        lambda ms: calls.append(ms) or iso_from_epoch_ms(ms),
    )
    iso = _IsoCache().text
    assert iso(1000) == "1970-01-01T00:00:01.000Z"
    assert iso(1999) == "1970-01-01T00:00:01.999Z"
    assert iso(2000) == "1970-01-01T00:00:02.000Z"
    assert calls == [1000, 2000]


def test_only_int_times_at_the_known_places_become_iso_text():
    draft = {
        "started_at": MOMENT,
        "finished_at": True,  # not a time: bools are left alone
        "other": MOMENT,
        "meta": {"steps": [{"started_at": MOMENT, "finished_at": "given"}, "not a dict"]},
        "logs": [{"timestamp": MOMENT, "nested": {"timestamp": MOMENT}}],
    }
    out = iso_times(draft)
    text = iso_from_epoch_ms(MOMENT)
    assert out["started_at"] == text and out["finished_at"] is True and out["other"] == MOMENT
    assert out["meta"]["steps"] == [{"started_at": text, "finished_at": "given"}, "not a dict"]
    assert out["logs"] == [{"timestamp": text, "nested": {"timestamp": MOMENT}}]
    assert draft["started_at"] == MOMENT  # the draft itself is not changed
    assert draft["meta"]["steps"][0]["started_at"] == MOMENT


@pytest.mark.parametrize("op", ["test_finish", "hook_finish"])
def test_a_finish_is_converted_then_fitted(op):
    body = finalize(op, {"result": "weird", "finished_at": MOMENT, "file_name": "f.feature"})
    assert body["finished_at"] == iso_from_epoch_ms(MOMENT)
    assert body["result"] == "failed"
    assert body["scopes"] == ["f.feature"]


@pytest.mark.parametrize("op", ["test_finish", "hook_finish", "test_start", "logs"])
def test_finalize_gives_what_converting_then_fitting_gives_and_leaves_the_draft(op):
    import copy

    from behave_bstack.delivery.limits import fit_log_entries, fit_payload

    step = {"id": "1", "keyword": "Given", "text": "x", "result": "passed"}
    draft = {
        "result": "passed",
        "started_at": MOMENT,
        "finished_at": MOMENT + 5,
        "file_name": "f.feature",
        "hook_type": "BEFORE_ALL",
        "meta": {"steps": [{**step, "started_at": MOMENT, "finished_at": None}, "odd"]},
        "logs": [{"timestamp": MOMENT, "message": "m" * 25_000, "level": "INFO"}, 7],
    }
    snapshot = copy.deepcopy(draft)
    converted = iso_times(draft)
    if op == "logs":
        expected = {"logs": fit_log_entries(converted["logs"])}
    else:
        expected = fit_payload(op, converted)
    assert finalize(op, draft) == expected
    assert draft == snapshot
