"""behave_bstack.delivery.limits: every payload stays inside every limit of tra-api.md."""

from __future__ import annotations

import copy
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from behave_bstack.delivery.limits import (
    TRUNCATION_MARKER,
    batch,
    clean_text,
    clip_middle,
    fit_backtrace,
    fit_custom_metadata,
    fit_environment,
    fit_failure,
    fit_log_entries,
    fit_payload,
    fit_scopes,
    fit_tags,
)
from behave_bstack.emulator.validation import validate

TS = "2025-11-11T10:30:05.123Z"
HYPO = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


class Boom:
    def __str__(self) -> str:
        raise RuntimeError("no")

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:  # lets deepcopy snapshots compare equal
        return type(other) is Boom

    __hash__ = object.__hash__


class NastyStr(str):
    def __str__(self) -> str:
        raise ValueError("no")


MARKER_RE = re.compile(re.escape(TRUNCATION_MARKER).replace(r"\{n\}", r"(\d+)"))


# --- clean_text ----------------------------------------------------------------------------
def test_clean_text_coerces_without_crashing() -> None:
    assert clean_text(Boom()) == "<unprintable Boom>"
    assert clean_text(NastyStr("abc")) == "abc"
    assert clean_text(None) == ""
    assert clean_text(42) == "42"
    assert clean_text(b"ok\xff") == "ok\ufffd"
    assert clean_text(10**5000).startswith("<unprintable")  # int too large to print


def test_clean_text_repairs_and_strips_controls() -> None:
    assert clean_text("a\ud800b") == "a\ufffdb"
    assert clean_text("\ud83d\ude00") == "😀"  # a valid pair written as two code points
    assert clean_text("\x1b[1;31mred\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07") == "red link"
    assert clean_text("a\x00b\x07c\x7fd\x9fe") == "abcde"
    assert clean_text("l1\r\nl2\rl3\n\tx") == "l1\nl2\nl3\n\tx"
    assert clean_text("l1\r\nl2\tx\u2028y", multiline=False) == "l1 l2 x y"
    assert clean_text("שלום\u200f 😀") == "שלום\u200f 😀"  # RTL marks and emoji are text


def test_clean_text_truncates_with_visible_marker() -> None:
    out = clean_text("x" * 1000, 100)
    assert len(out) == 100
    match = MARKER_RE.search(out)
    assert match and out.startswith("x" * 50)
    assert len(out) - len(match.group(0)) + int(match.group(1)) == 1000  # says how much was cut
    assert clean_text("short", 100) == "short"
    assert len(clean_text("x" * 100, 5)) <= 5  # budget smaller than the marker


def test_clean_text_multi_megabyte_is_bounded_and_marked() -> None:
    out = clean_text("\x1b[31mab\x00" * 1_000_000, 300)
    assert len(out) <= 300 and out.startswith("abab") and MARKER_RE.search(out)


@HYPO
@given(st.one_of(st.text(), st.binary(), st.integers(), st.floats(), st.none()), st.booleans())
def test_clean_text_never_raises_and_is_clean(value: object, multiline: bool) -> None:
    out = clean_text(value, 60, multiline=multiline)
    assert type(out) is str and len(out) <= 60
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]", out)
    if not multiline:
        assert "\n" not in out and "\t" not in out


# --- clip_middle / backtraces --------------------------------------------------------------
def test_clip_middle_keeps_head_and_tail() -> None:
    text = "HEAD" + "m" * 10_000 + "TAIL"
    out = clip_middle(text, 5000)
    assert len(out) == 5000 and out.startswith("HEAD") and out.endswith("TAIL")
    assert MARKER_RE.search(out)
    assert clip_middle("short", 5000) == "short"


@HYPO
@given(st.text(min_size=0, max_size=3000), st.integers(0, 2500))
def test_clip_middle_properties(text: str, max_len: int) -> None:
    out = clip_middle(text, max_len)
    assert len(out) <= max_len
    if len(text) <= max_len:
        assert out == text
    elif max_len >= 60:
        match = MARKER_RE.search(out)
        assert match is not None
        head, tail = out[: match.start()], out[match.end() :]
        assert text.startswith(head) and text.endswith(tail) and len(head) >= len(tail) >= 15
        assert len(head) + len(tail) + int(match.group(1)) == len(text)


def test_fit_backtrace_keeps_head_and_tail_of_huge_traceback() -> None:
    lines = [f"line {i}" for i in range(100_000)]
    lines[-1] = "ValueError: " + "z" * 5000
    out = fit_backtrace(lines)
    assert len(out) == 1000
    assert out[0] == "line 0" and out[-2] == "line 99998"
    assert out[-1].startswith("ValueError: zzz") and len(out[-1]) <= 2000
    omitted = [line for line in out if "omitted" in line]
    assert len(omitted) == 1 and "99001 lines omitted" in omitted[0]


def test_fit_backtrace_splits_multiline_items() -> None:
    out = fit_backtrace(['  File "a.py", line 1, in f\n    boom()\n', "Error\r\n"])
    assert out == ['  File "a.py", line 1, in f', "    boom()", "Error"]
    assert fit_backtrace("one\ntwo") == ["one", "two"]


def test_fit_failure_caps_entries_with_a_note() -> None:
    out = fit_failure([{"backtrace": [f"e{i}"]} for i in range(150)])
    assert len(out) == 100
    assert out[0] == {"backtrace": ["e0"]}
    assert "51 more failures" in out[-1]["backtrace"][0]
    assert fit_failure("Traceback\nboom") == [{"backtrace": ["Traceback", "boom"]}]


# --- tags, scopes, metadata, environment ---------------------------------------------------
def test_fit_tags() -> None:
    tags = ["a", "", "a", " b ", "x" * 300, None, "c\nd"] + [f"t{i}" for i in range(60)]
    out = fit_tags(tags)
    assert len(out) == 50
    assert out[:3] == ["a", "b", out[2]] and len(out[2]) == 100 and MARKER_RE.search(out[2])
    assert out[3] == "c d"
    assert out[-1] == "…+15 more tags"  # 64 unique tags, 49 kept


def test_fit_scopes() -> None:
    assert fit_scopes([], "features/x.feature") == ["features/x.feature"]
    assert fit_scopes(["", None], "") == ["(no scope)"]
    many = fit_scopes([f"s{i}" for i in range(30)], "f")
    assert len(many) == 20 and many[0] == "s0" and many[-1] == "s29"
    assert "11 scopes omitted" in many[10]
    assert all(1 <= len(s) <= 100 for s in fit_scopes(["y" * 300, "F"], "f"))


def test_fit_custom_metadata() -> None:
    meta = {f"k{i}": [f"v{j}" for j in range(12)] for i in range(30)}
    meta[7] = "seven"
    out = fit_custom_metadata(meta)
    assert len(out) == 25 and "+7 more keys omitted" in out["…[truncated]"][0]
    assert out["k0"][:9] == [f"v{j}" for j in range(9)] and out["k0"][9] == "…+3 more"
    assert fit_custom_metadata({"a": "x" * 600, "": "gone", "b": None}) == {
        "a": [clean_text("x" * 600, 500)]
    }
    assert fit_custom_metadata(["not", "a", "dict"]) == {}


def test_fit_environment() -> None:
    env = {"os": "Linux\n", "os_version": "9" * 80, "browser": "", "gpu": "x", "device": None}
    out = fit_environment(env)
    assert set(out) == {"os", "os_version"}
    assert out["os"] == "Linux" and len(out["os_version"]) == 50


# --- fit_payload ---------------------------------------------------------------------------
def typical_finish() -> dict:
    steps = [
        {
            "id": f"s{i}",
            "keyword": "Given",
            "text": f"the user has {i} items in the basket",
            "started_at": TS,
            "finished_at": TS,
            "result": "passed",
            "duration": 12,
        }
        for i in range(6)
    ]
    return {
        "result": "passed",
        "finished_at": TS,
        "file_name": "features/basket.feature",
        "scopes": ["Basket"],
        "duration_in_ms": 73,
        "meta": {"steps": steps},
        "hooks": [],
    }


def test_fit_payload_leaves_clean_payload_alone() -> None:
    body = typical_finish()
    out = fit_payload("test_finish", body)
    body.pop("hooks")  # an empty optional list is dropped
    assert out == body


def test_fit_payload_does_not_mutate_input_and_passes_unknown_fields() -> None:
    body = typical_finish()
    body["meta"]["steps"][0]["failure"] = "f" * 9000
    body["scopes"] = ["s" * 200]
    body["x_unknown"] = {"keep": ["me"]}
    snapshot = copy.deepcopy(body)
    out = fit_payload("test_finish", body)
    assert body == snapshot
    assert out["x_unknown"] is body["x_unknown"]
    assert len(out["meta"]["steps"][0]["failure"]) == 5000


def test_fit_payload_repairs_fields() -> None:
    body = typical_finish()
    body.update(result="undefined", duration_in_ms=0, failure=["boom"], scopes=None)
    body["meta"]["steps"] = [
        {"id": "a", "result": "untested", "duration": -5},
        {"id": "a"},
        {"keyword": None},
        "not a step",
    ]
    out = fit_payload("test_finish", body)
    assert out["result"] == "failed" and out["duration_in_ms"] == 1
    assert out["scopes"] == ["basket.feature"]
    steps = out["meta"]["steps"]
    assert [s["id"] for s in steps] == ["a", "a-2", "step-3"]
    assert steps[0]["result"] == "failed" and steps[0]["duration"] == 0
    assert "keyword" not in steps[2]
    assert validate("test_finish", out) == []
    assert "duration_in_ms" not in fit_payload("test_finish", {**body, "duration_in_ms": "12"})


@pytest.mark.parametrize(
    ("field", "given", "sent"),
    [
        # step text: kept as it is only when a short, clean, non-empty str
        ("text", "t" * 10_000, "t" * 10_000),
        ("text", "t" * 10_001, "t" * 9_979 + "…[truncated 22 chars]"),
        ("text", "", None),
        ("text", "a\x00b\tc", "ab\tc"),
        ("text", 42, "42"),
        # step keyword and id: single line, stripped
        ("keyword", " Given ", "Given"),
        ("keyword", "Gi\nven", "Gi ven"),
        ("keyword", "k" * 101, "k" * 79 + "…[truncated 22 chars]"),
        ("id", " 7 ", "7"),
        # step duration: an int within 0..2**53-1 is kept, others repaired or dropped
        ("duration", 0, 0),
        ("duration", 2**53 - 1, 2**53 - 1),
        ("duration", 2**53, 2**53 - 1),
        ("duration", -1, 0),
        ("duration", 2.6, 3),
        ("duration", True, None),
        ("started_at", None, None),
        ("finished_at", None, None),
    ],
)
def test_fit_payload_step_fields_at_their_edges(field: str, given: object, sent: object) -> None:
    step = {"id": "1", "keyword": "Given", "text": "x", "result": "passed", field: given}
    out = fit_payload("test_finish", {**typical_finish(), "meta": {"steps": [step]}})
    fitted = out["meta"]["steps"][0]
    assert fitted.get(field) == sent and (field in fitted) == (sent is not None)


def test_fit_payload_build_start() -> None:
    body = {
        "name": "n" * 300,
        "project_name": "",
        "started_at": TS,
        "tags": [f"t{i}" for i in range(80)],
        "build_run_identifier": "r" * 100,
        "host_info": {"hostname": "h\x00", "platform": "Linux", "arch": "aarch64", "type": "vm"},
        "version_control": {"sha": "abc", "commit_message": "subject\n\nbody" + "b" * 9000},
        "framework": {"name": "behave"},
    }
    out = fit_payload("build_start", body)
    assert validate("build_start", out) == []
    assert len(out["name"]) == 255 and out["project_name"] == "(unnamed project)"
    assert out["host_info"] == {"hostname": "h", "platform": "linux", "arch": "arm64"}
    assert out["version_control"]["commit_message"].startswith("subject\n\nbody")
    assert "framework" not in out and len(out["build_run_identifier"]) == 64


@pytest.mark.parametrize("body", [None, [], "x", 5, {"meta": 5, "failure": 3, "scopes": "one"}])
def test_fit_payload_never_raises_on_garbage(body: object) -> None:
    for op in ("build_start", "build_finish", "test_start", "test_finish", "hook_start"):
        assert isinstance(fit_payload(op, body), dict)


# --- logs ----------------------------------------------------------------------------------
PART_RE = re.compile(r"\[part (\d+)/(\d+)\] ")


def test_fit_log_entries_splits_long_messages() -> None:
    entry = {"kind": "TEST_LOG", "test_run_uuid": "u", "timestamp": TS, "level": "INFO\n"}
    msg = "".join(f"line {i}\n" for i in range(5000))  # ~39k chars
    out = fit_log_entries([{**entry, "message": msg}, {**entry, "message": "x" * 10_000}])
    parts, last = out[:-1], out[-1]
    assert last["message"] == "x" * 10_000  # exactly at the limit: not split
    assert len(parts) >= 4 and all(len(p["message"]) <= 10_000 for p in parts)
    assert parts[1]["message"].startswith(f"[part 2/{len(parts)}] ")
    assert all(p["level"] == "INFO" and p["test_run_uuid"] == "u" for p in parts)
    assert "".join(PART_RE.sub("", p["message"], count=1) for p in parts) == msg


def test_batch() -> None:
    assert batch(list(range(1201))) == [
        list(range(0, 500)),
        list(range(500, 1000)),
        list(range(1000, 1201)),
    ]
    assert batch([]) == [] and batch([1, 2, 3], 2) == [[1, 2], [3]]
    assert max(len(b) for b in batch(list(range(2000)), 10_000)) == 500


# --- property tests against the emulator's validator (the oracle) ---------------------------
SPECIAL = [
    "\ud800",
    "\udfff",
    "\ud83d",
    "\ude00",
    "\x00",
    "\x1b[31m",
    "\x1b]8;;http://x\x07",
    "\x1b",
    "\x9b1m",
    "\u200f",
    "\u202e",
    "😀",
    "\r\n",
    "\r",
    "\n",
    "\t",
    "\x85",
    "\u2028",
    "\x7f",
    " ",
]
chars = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.sampled_from(SPECIAL),
)
small_text = st.lists(chars, max_size=30).map("".join)
big_text = st.builds(
    lambda piece, n: (piece or "x") * n,
    small_text,
    st.sampled_from([51, 101, 256, 501, 1001, 2001, 5001, 10_001, 30_000]),
)
odd_value = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.binary(max_size=40),
    st.builds(Boom),
    st.builds(NastyStr, small_text),
)
value = st.one_of(small_text, big_text, odd_value)  # mostly strings, often too long


def many(item: st.SearchStrategy, sizes: list[int]) -> st.SearchStrategy:
    """A few arbitrary items plus n generated distinct ones (big lists cheaply)."""
    return st.builds(
        lambda xs, n, long: xs + [str(i) + ("y" * 300 if long else "t") for i in range(n)],
        st.lists(item, max_size=6),
        st.sampled_from(sizes),
        st.booleans(),
    )


lines = st.one_of(
    many(value, [0, 3, 1000, 1001, 2500]),
    value,
)
failure = st.one_of(
    st.lists(st.one_of(st.fixed_dictionaries({"backtrace": lines}), lines), max_size=4),
    st.builds(lambda n: [{"backtrace": [f"e{i}"]} for i in range(n)], st.sampled_from([100, 150])),
    value,
)
tags = st.one_of(many(value, [0, 50, 51, 500]), value)
scopes = st.one_of(many(value, [0, 1, 20, 21, 40]), value)
metadata = st.one_of(
    st.dictionaries(
        st.one_of(value.filter(lambda v: isinstance(v, (str, int, type(None)))), small_text),
        st.one_of(value, st.lists(value, max_size=15)),
        max_size=30,
    ),
    st.builds(
        lambda keys, values: {f"k{i}": [str(j) for j in range(values)] for i in range(keys)},
        st.sampled_from([25, 26, 40]),
        st.sampled_from([10, 11, 20]),
    ),
    value,
)
environment = st.one_of(
    st.dictionaries(
        st.sampled_from(["device", "os", "os_version", "browser", "browser_version", "gpu"]),
        value,
    ),
    value,
)
step = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.sampled_from(["1", "1", "1-2", "", None]), value),
        "keyword": value,
        "text": value,
        "started_at": st.sampled_from([TS, None]),
        "finished_at": st.just(TS),
        "result": st.one_of(st.sampled_from(["passed", "FAILED", "untested"]), value),
        "duration": st.one_of(value, st.integers(-(2**70), 2**70)),
        "failure": st.one_of(value, st.sampled_from([4999, 5000, 5001, 9000]).map("f".__mul__)),
    },
)
steps = st.one_of(st.lists(st.one_of(step, value), max_size=8), value)
duration = st.one_of(value, st.integers(-(2**70), 2**70), st.booleans())
info = st.one_of(st.dictionaries(st.one_of(small_text, st.integers()), value, max_size=8), value)
host_info = st.one_of(
    info,
    st.fixed_dictionaries(
        {
            "platform": st.sampled_from(["linux", "Darwin", "windows", "beos"]),
            "arch": st.sampled_from(["x86_64", "arm64", "mips"]),
            "type": value,
        }
    ),
)

COMMON_RUN = {"file_name": value, "scopes": scopes}
OPTIONAL_RUN = {"custom_metadata": metadata, "environment": environment, "x_unknown": st.just(1)}
BODIES = {
    "build_start": st.fixed_dictionaries(
        {"started_at": st.just(TS)},
        optional={
            "name": value,
            "project_name": value,
            "tags": tags,
            "build_run_identifier": value,
            "host_info": host_info,
            "ci_info": info,
            "version_control": st.one_of(
                info, st.fixed_dictionaries({"commit_message": value, "sha": value})
            ),
            "framework": st.one_of(
                value, st.fixed_dictionaries({}, optional={"name": value, "version": value})
            ),
        },
    ),
    "build_finish": st.fixed_dictionaries({"finished_at": st.just(TS)}),
    "test_start": st.fixed_dictionaries(
        {"started_at": st.just(TS), **COMMON_RUN},
        optional={
            "name": value,
            "tags": tags,
            "location": value,
            "vc_filepath": value,
            "result": value,
            "body": st.one_of(
                value, st.fixed_dictionaries({}, optional={"lang": value, "code": value})
            ),
            **OPTIONAL_RUN,
        },
    ),
    "test_finish": st.fixed_dictionaries(
        {"finished_at": st.just(TS), **COMMON_RUN},
        optional={
            "result": value,
            "duration_in_ms": duration,
            "failure": failure,
            "meta": st.one_of(value, st.fixed_dictionaries({"steps": steps})),
            "hooks": st.one_of(value, st.lists(value, max_size=4)),
            **OPTIONAL_RUN,
        },
    ),
    "hook_start": st.fixed_dictionaries(
        {"started_at": st.just(TS), **COMMON_RUN},
        optional={
            "hook_type": value,
            "name": value,
            "test_run_id": value,
            "tags": tags,
            "location": value,
            **OPTIONAL_RUN,
        },
    ),
    "hook_finish": st.fixed_dictionaries(
        {"finished_at": st.just(TS), **COMMON_RUN},
        optional={
            "hook_type": value,
            "result": value,
            "duration_in_ms": duration,
            "failure": failure,
            **OPTIONAL_RUN,
        },
    ),
}


@pytest.mark.parametrize("op", sorted(BODIES))
@HYPO
@given(data=st.data())
def test_fit_payload_is_always_valid(op: str, data: st.DataObject) -> None:
    body = data.draw(BODIES[op])
    snapshot = copy.deepcopy(body)
    out = fit_payload(op, body)
    assert validate(op, out) == []
    assert body == snapshot  # input not mutated


log_entry = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["TEST_LOG", "HOOK_LOG", "TEST_STEP"]),
        "test_run_uuid": st.just("u-1"),
        "timestamp": st.just(TS),
        "message": st.one_of(
            value,
            st.builds(lambda a, b: a * 10_000 + b, small_text, small_text),
            st.builds(lambda n: "".join(f"row {i}\n" for i in range(n)), st.integers(0, 9000)),
        ),
    },
    optional={"level": value},
)


@HYPO
@given(st.lists(log_entry, min_size=1, max_size=8), st.sampled_from([1, 3, 500]))
def test_fit_log_entries_valid_and_lossless(entries: list[dict], size: int) -> None:
    tagged = [{**e, "x_index": i} for i, e in enumerate(entries)]
    out = fit_log_entries(tagged)
    for chunk in batch(out, size):
        assert len(chunk) <= size
        assert validate("logs", {"logs": chunk}) == []
    for i, entry in enumerate(entries):
        parts = [e["message"] for e in out if e["x_index"] == i]
        cleaned = clean_text(entry["message"])
        if len(parts) == 1:
            assert parts[0] == cleaned
        else:
            numbers = [PART_RE.match(p).groups() for p in parts]
            assert numbers == [(str(k), str(len(parts))) for k in range(1, len(parts) + 1)]
            assert "".join(PART_RE.sub("", p, count=1) for p in parts) == cleaned
