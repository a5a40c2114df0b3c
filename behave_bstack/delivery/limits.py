"""Keep every payload inside every limit of the TRA API (tra-api.md §2–§3).

The server rejects a payload that breaks any limit *whole* (422), losing that test's data, so
everything sent goes through :func:`fit_payload` (or :func:`fit_log_entries` + :func:`batch` for
logs) first. Text is coerced, repaired and cleaned, then shortened with a visible marker; lists
that are too long lose items with a note saying how many. Nothing here raises on hostile input.

Lengths are Python ``str`` lengths (code points). Decisions where tra-api.md is silent:

* Cleaning: unpaired surrogates -> U+FFFD (valid pairs are joined into one character); ANSI
  escape sequences (CSI, OSC, two-byte ESC) removed; ``\\r\\n`` and lone ``\\r`` become ``\\n``;
  other C0/C1 controls and NUL removed. Single-line fields turn line/tab separators into spaces
  and are stripped of surrounding whitespace.
* Required strings that end up empty (or are missing) get a placeholder such as
  ``"(unnamed)"`` rather than being sent empty; optional ones that end up empty are dropped.
* Caps the API does not give: step ``text`` 10,000; ``body.code`` 20,000; ``body.lang`` 50;
  step ``id``/``keyword`` 100; ``framework`` name/version 100; ``hooks`` items and
  ``test_run_id`` 100; log ``level`` 50; ``host_info``/``ci_info``/``version_control`` values
  1,000 single-line except ``version_control.commit_message`` (5,000, multi-line).
* ``host_info`` ``platform``/``type``/``arch`` must be in the API's enums: common spellings
  (``Linux``, ``x86_64``, ``aarch64``, ``windows``) are mapped, anything else is dropped.
* Step ``started_at``/``finished_at`` sent as ``None`` are dropped; other timestamps pass
  through untouched (building them is the caller's job).
* Durations are capped at 2**53 - 1 (the largest integer every JSON reader keeps exactly).
* Multi-megabyte input with a ``max_len``: only a head window (2 * max_len + 4096 chars) is
  cleaned, so the marker's count then includes raw characters that were never inspected.
* Failure entries whose backtrace has no text are dropped; a result outside the enum (e.g.
  behave's ``untested``/``undefined``) becomes ``failed``: callers should map statuses first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

__all__ = [
    "TRUNCATION_MARKER",
    "batch",
    "clean_text",
    "clip_middle",
    "fit_backtrace",
    "fit_custom_metadata",
    "fit_environment",
    "fit_failure",
    "fit_log_entries",
    "fit_payload",
    "fit_scopes",
    "fit_tags",
]

TRUNCATION_MARKER = "…[truncated {n} chars]"
_SHORT_MARKER = "…"  # used only when a budget is too small for the full marker

# --- API limits (tra-api.md) -------------------------------------------------------------------
RESULTS = ("passed", "failed", "skipped", "timeout")
MAX_TAGS, MAX_TAG_LEN = 50, 100
MAX_SCOPES, MAX_SCOPE_LEN = 20, 100
MAX_META_KEYS, MAX_META_VALUES, MAX_META_LEN = 25, 10, 500
MAX_FAILURES, MAX_BACKTRACE_LINES, MAX_BACKTRACE_LINE = 100, 1000, 2000
MAX_STEP_FAILURE = 5000
MAX_LOG_MESSAGE, MAX_LOG_BATCH = 10_000, 500
ENVIRONMENT_LIMITS = {
    "device": 100,
    "os": 100,
    "os_version": 50,
    "browser": 100,
    "browser_version": 50,
}
# --- caps decided here (documented in the module docstring) ---
MAX_STEP_TEXT = 10_000
MAX_CODE = 20_000
MAX_INFO_VALUE = 1000
MAX_COMMIT_MESSAGE = 5000
MAX_ID = 100
_MAX_INT = 2**53 - 1

# --- cleaning ----------------------------------------------------------------------------------
# Anything a string must not contain as-is; if neither matches, the string is already clean.
_DIRTY_MULTI = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_DIRTY_SINGLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ANSI = re.compile(
    r"\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)"  # OSC ... BEL/ST (hyperlinks, titles)
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI (colours, cursor moves)
    r"|\x1b[ -/]*[0-~]"  # other ESC sequences (charset, keypad, reset)
)
_CONTROL_MULTI = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACE_SINGLE = re.compile(r"[\t\n\x0b\x0c\x1c-\x1f\x85\u2028\u2029]")
_CONTROL_SINGLE = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
# Inputs longer than this many times max_len are cleaned through a head window only.
_WINDOW_SLACK = 4096


def _to_str(value: object) -> str:
    """Any object as an exact ``str``, never raising."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    try:
        if isinstance(value, str):
            return str.__str__(value)  # exact copy; a subclass's __str__ may misbehave
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8", "replace")
        text = str(value)
        return text if type(text) is str else str.__str__(text)
    except Exception:
        try:
            name = type(value).__name__
        except Exception:
            name = "object"
        return f"<unprintable {_to_str(name) if type(name) is not str else name}>"


def _clean(text: str, multiline: bool) -> str:
    if _SURROGATE.search(text):
        # Joins valid surrogate pairs into one character, replaces the unpaired ones.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if "\x1b" in text or "\x9b" in text:
        text = _ANSI.sub("", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if multiline:
        return _CONTROL_MULTI.sub("", text)
    return _CONTROL_SINGLE.sub("", _SPACE_SINGLE.sub(" ", text))


def _marker(n: int) -> str:
    return TRUNCATION_MARKER.format(n=n)


def _truncate(text: str, max_len: int, unseen: int = 0) -> str:
    """Keep the head of ``text`` so that head + marker <= max_len.

    ``unseen`` counts input characters beyond ``text`` that were never looked at.
    """
    total = len(text) + unseen
    if total <= max_len:
        return text
    longest = len(_marker(total))  # the marker can only be shorter than this
    if max_len < longest + 1:
        return text[: max_len - 1] + _SHORT_MARKER if max_len >= 1 else ""
    keep = max_len - longest
    while keep < len(text) and keep + 1 + len(_marker(total - keep - 1)) <= max_len:
        keep += 1  # a shorter count left room for one more character
    return text[:keep] + _marker(total - keep)


def _fit_text(value: object, max_len: int | None, multiline: bool, strip: bool) -> str:
    dirty = _DIRTY_MULTI if multiline else _DIRTY_SINGLE
    if type(value) is str and (max_len is None or len(value) <= max_len):
        if not dirty.search(value):  # the common case: already short and clean
            return value.strip() if strip else value
        text = value
    else:
        text = _to_str(value)
    if max_len is not None and len(text) > 2 * max_len + _WINDOW_SLACK:
        # Multi-megabyte input: clean only a head window. Artifacts of the cut (half an ANSI
        # sequence, half a surrogate pair) sit at the window's end, far past what is kept.
        window = 2 * max_len + _WINDOW_SLACK
        head = _clean(text[:window], multiline)
        if strip:
            head = head.lstrip()
        if len(head) >= max_len + 16:
            return _truncate(head, max_len, unseen=len(text) - window)
    if dirty.search(text):
        text = _clean(text, multiline)
    if strip:
        text = text.strip()
    if max_len is not None and len(text) > max_len:
        return _truncate(text, max(0, max_len))
    return text


def clean_text(value: object, max_len: int | None = None, *, multiline: bool = True) -> str:
    """Coerce ``value`` to a clean ``str`` of at most ``max_len`` characters, never raising.

    ``None`` -> ``""``; bytes are decoded as UTF-8 with replacement; an object whose ``__str__``
    raises -> ``"<unprintable TypeName>"``. Unpaired surrogates become U+FFFD, ANSI escapes and
    control characters (NUL included) are removed, except ``\\n`` and ``\\t`` when
    ``multiline``; when not ``multiline`` line breaks and tabs become spaces. A longer result is
    cut at the tail and ends with ``TRUNCATION_MARKER`` (the whole result stays <= max_len).
    """
    return _fit_text(value, _as_len(max_len), multiline, strip=False)


def _as_len(max_len: object) -> int | None:
    """A usable length limit (a bad one must not crash the caller: it becomes 0)."""
    if max_len is None or type(max_len) is int:
        return max_len
    try:
        return max(0, int(max_len))
    except Exception:
        return 0


def _line(value: object, max_len: int) -> str:
    """A single-line, stripped, capped field value."""
    if type(value) is str and len(value) <= max_len and not _DIRTY_SINGLE.search(value):
        return value.strip()  # _fit_text's common case, without the call (the hottest path)
    return _fit_text(value, max_len, multiline=False, strip=True)


def clip_middle(text: str, max_len: int) -> str:
    """Shorten ``text`` to ``max_len`` keeping its head and tail, the marker in the middle.

    Does not clean (pass a cleaned string); a non-str is coerced first.
    """
    text = _to_str(text)
    max_len = _as_len(max_len) or 0
    if len(text) <= max_len:
        return text
    longest = len(_marker(len(text)))
    if max_len < longest + 2:
        return _truncate(text, max_len)
    budget = max_len - longest
    while budget + 1 + len(_marker(len(text) - budget - 1)) <= max_len:
        budget += 1  # a shorter count left room for one more character
    head = (budget + 1) // 2
    tail = budget - head
    return text[:head] + _marker(len(text) - budget) + text[len(text) - tail :]


# --- lists -------------------------------------------------------------------------------------
def _as_list(value: object) -> list:
    """A list of items from whatever was given (a lone scalar is one item)."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return [value]


def _split_lines(value: object) -> list[str]:
    text = _to_str(value)
    if "\n" not in text and "\r" not in text:
        return [text]
    parts = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # "line\n" is one line, not two
    return parts


def fit_backtrace(lines: list[str]) -> list[str]:
    """At most 1000 clean lines of at most 2000 chars each.

    Items containing line breaks are split into lines first. A longer backtrace keeps its first
    500 and last 499 lines around one marker line saying how many lines were omitted (the head
    shows where it started, the tail where it failed).
    """
    flat: list[str] = []
    for item in _as_list(lines):
        flat.extend(_split_lines(item))
    if len(flat) > MAX_BACKTRACE_LINES:
        head = MAX_BACKTRACE_LINES // 2
        tail = MAX_BACKTRACE_LINES - head - 1
        omitted = len(flat) - head - tail
        flat = flat[:head] + [f"…[{omitted} lines omitted]…"] + flat[len(flat) - tail :]
    return [_fit_text(line, MAX_BACKTRACE_LINE, multiline=True, strip=False) for line in flat]


def fit_failure(failure: list) -> list:
    """At most 100 entries ``{"backtrace": [...]}``; an entry may be given as a dict with a
    ``backtrace``, a list of lines or a string. Entries with no text are dropped; past 100, the
    first 99 are kept and a last entry says how many were omitted."""
    out = []
    for item in _as_list(failure):
        if isinstance(item, Mapping):
            try:
                item = item.get("backtrace")
            except Exception:
                item = None
        backtrace = fit_backtrace(item)
        if any(backtrace):
            out.append({"backtrace": backtrace})
    if len(out) > MAX_FAILURES:
        extra = len(out) - (MAX_FAILURES - 1)
        out = out[: MAX_FAILURES - 1] + [{"backtrace": [f"…+{extra} more failures omitted"]}]
    return out


def fit_tags(tags: list) -> list[str]:
    """At most 50 clean single-line tags of <=100 chars; empty ones and duplicates dropped
    (order kept); past 50, the first 49 and a note tag ``"…+N more tags"``."""
    seen: set[str] = set()
    out: list[str] = []
    for tag in _as_list(tags):
        text = _line(tag, MAX_TAG_LEN)
        if text and text not in seen:
            seen.add(text)
            out.append(text)
    if len(out) > MAX_TAGS:
        extra = len(out) - (MAX_TAGS - 1)
        out = out[: MAX_TAGS - 1] + [f"…+{extra} more tags"]
    return out


def fit_scopes(scopes: list, fallback: str) -> list[str]:
    """1–20 clean single-line scopes of 1..100 chars, outermost first.

    Empty ones are dropped (duplicates kept: a rule may share its feature's name). None left ->
    ``[fallback]`` (or ``["(no scope)"]``). More than 20 -> the outermost 10, a marker
    ``"…[N scopes omitted]"`` and the innermost 9: both ends of a hierarchy say the most.
    """
    out = [text for text in (_line(s, MAX_SCOPE_LEN) for s in _as_list(scopes)) if text]
    if not out:
        return [_line(fallback, MAX_SCOPE_LEN) or "(no scope)"]
    if len(out) > MAX_SCOPES:
        head, tail = 10, MAX_SCOPES - 11
        omitted = len(out) - head - tail
        out = out[:head] + [f"…[{omitted} scopes omitted]"] + out[len(out) - tail :]
    return out


def _items(mapping: object) -> list[tuple]:
    """A mapping's items as a list, or [] for anything else (never raising)."""
    if isinstance(mapping, Mapping):
        try:
            return list(mapping.items())
        except Exception:
            return []
    return []


def fit_custom_metadata(meta: dict) -> dict[str, list[str]]:
    """``{key: [value, ...]}`` with <=25 keys, <=10 values per key, keys/values <=500 chars.

    Keys are clean single-line strings, values clean (multi-line allowed) strings; a scalar
    value becomes a one-item list. Empty keys/values are dropped, keys without values too; keys
    equal after cleaning are merged. Past 10 values: the first 9 and ``"…+N more"``. Past 25
    keys: the first 24 and a note key ``"…[truncated]"`` whose value says how many were omitted.
    """
    merged: dict[str, list[str]] = {}
    for key, value in _items(meta):
        name = _line(key, MAX_META_LEN)
        if not name:
            continue
        values = [
            text
            for text in (
                _fit_text(v, MAX_META_LEN, multiline=True, strip=True) for v in _as_list(value)
            )
            if text
        ]
        if values:
            merged.setdefault(name, []).extend(values)
    out: dict[str, list[str]] = {}
    for name, values in merged.items():
        if len(values) > MAX_META_VALUES:
            extra = len(values) - (MAX_META_VALUES - 1)
            values = values[: MAX_META_VALUES - 1] + [f"…+{extra} more"]
        out[name] = values
    if len(out) > MAX_META_KEYS:
        kept = list(out.items())[: MAX_META_KEYS - 1]
        extra = len(out) - len(kept)
        out = dict(kept)
        out.pop("…[truncated]", None)
        out["…[truncated]"] = [f"+{extra} more keys omitted"]
    return out


def fit_environment(env: dict) -> dict:
    """Only ``device``/``os``/``os_version``/``browser``/``browser_version``, clean single-line
    and within their limits; unknown keys and empty values dropped."""
    out = {}
    for key, value in _items(env):
        cap = ENVIRONMENT_LIMITS.get(key) if type(key) is str else None
        if cap is not None:
            text = _line(value, cap)
            if text:
                out[key] = text
    return out


# --- numbers -----------------------------------------------------------------------------------
def _int_ms(value: object, minimum: int) -> int | None:
    """A duration as an int >= minimum, or None when it is not a finite number."""
    if type(value) is int and minimum <= value <= _MAX_INT:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = round(value)
    return min(max(int(value), minimum), _MAX_INT)


def _result(value: object) -> str:
    """``value`` if it is one of the API's results (any case), else ``"failed"``."""
    if type(value) is str and value in RESULTS:
        return value
    text = _line(value, 20).lower()
    return text if text in RESULTS else "failed"


# --- payloads ----------------------------------------------------------------------------------
def _put_line(out: dict, key: str, max_len: int, placeholder: str | None = None) -> None:
    """Clean ``out[key]`` in place (single-line); empty -> placeholder, or dropped if optional."""
    text = _line(out[key], max_len) if key in out else ""
    if text:
        out[key] = text
    elif placeholder is not None:
        out[key] = placeholder
    else:
        out.pop(key, None)


def _put(out: dict, key: str, value: object) -> None:
    """Set ``out[key]``, or drop it when the fitted value is empty."""
    if value or value == 0:
        out[key] = value
    else:
        out.pop(key, None)


# host_info fields the API restricts to an enum: common spellings mapped, others dropped.
_HOST_ENUMS = {
    "platform": {"linux": "linux", "linux2": "linux", "darwin": "darwin", "macos": "darwin"}
    | {"win32": "win32", "windows": "win32", "nt": "win32"},
    "type": {"physical": "physical", "virtual": "virtual", "container": "container"},
    "arch": {"x64": "x64", "x86_64": "x64", "amd64": "x64", "arm64": "arm64", "aarch64": "arm64"},
}


def _fit_info(info: object, long_text: tuple[str, ...] = (), enums: dict | None = None) -> dict:
    out = {}
    for key, value in _items(info):
        name = _line(key, MAX_ID)
        if not name or value is None:
            continue
        if name in long_text:
            text = _fit_text(value, MAX_COMMIT_MESSAGE, multiline=True, strip=True)
        else:
            text = _line(value, MAX_INFO_VALUE)
        if enums and name in enums:
            text = enums[name].get(text.lower(), "")
        if text:
            out[name] = text
    return out


def _fit_framework(framework: object) -> dict | None:
    if not isinstance(framework, Mapping):
        return None
    name = _line(framework.get("name"), 100)
    version = _line(framework.get("version"), 100)
    return {"name": name, "version": version} if name and version else None


def _fit_body(code_body: object) -> dict | None:
    if not isinstance(code_body, Mapping):
        return None
    out = dict(code_body)
    _put_line(out, "lang", 50)
    if "code" in out:
        _put(out, "code", _fit_text(out["code"], MAX_CODE, multiline=True, strip=False))
    return out or None


def _fit_steps(steps: object) -> list[dict]:
    out: list[dict] = []
    seen: set[str] = set()
    for index, step in enumerate(_as_list(steps), 1):
        if type(step) is not dict and not isinstance(step, Mapping):
            continue
        fitted = dict(step)
        step_id = _line(fitted.get("id"), MAX_ID) or f"step-{index}"
        if step_id in seen:
            base, n = step_id[: MAX_ID - 12], 2
            while f"{base}-{n}" in seen:
                n += 1
            step_id = f"{base}-{n}"
        seen.add(step_id)
        fitted["id"] = step_id
        if fitted.get("started_at", 0) is None:
            del fitted["started_at"]  # optional: send nothing rather than null
        if fitted.get("finished_at", 0) is None:
            del fitted["finished_at"]
        _put_line(fitted, "keyword", MAX_ID)
        if "text" in fitted:
            text = fitted["text"]
            # A short, clean, non-empty str stays as it is; anything else is fitted.
            if not (
                type(text) is str
                and 0 < len(text) <= MAX_STEP_TEXT
                and not _DIRTY_MULTI.search(text)
            ):
                _put(fitted, "text", _fit_text(text, MAX_STEP_TEXT, True, False))
        if "failure" in fitted:
            text = clip_middle(_fit_text(fitted["failure"], None, True, False), MAX_STEP_FAILURE)
            _put(fitted, "failure", text)
        if "result" in fitted:
            result = fitted["result"]
            if type(result) is not str or result not in RESULTS:
                _put(fitted, "result", _result(result) if _line(result, 20) else "")
        if "duration" in fitted:
            duration = fitted["duration"]
            if not (type(duration) is int and 0 <= duration <= _MAX_INT):  # else: as it is
                _put(fitted, "duration", _int_ms(duration, 0))
        out.append(fitted)
    return out


def _fit_meta(meta: object) -> dict | None:
    if not isinstance(meta, Mapping):
        return None
    out = dict(meta)
    if "steps" in out:
        out["steps"] = _fit_steps(out["steps"])
    return out


def _fit_run_common(out: dict, hook: bool) -> None:
    """Fields shared by test and hook runs, start and finish."""
    if hook:
        _put_line(out, "hook_type", 50, "(unknown)")
    _put_line(out, "file_name", 1000, "(unknown file)")
    base = out["file_name"].replace("\\", "/").rsplit("/", 1)[-1]
    out["scopes"] = fit_scopes(out.get("scopes"), base)
    if "custom_metadata" in out:
        _put(out, "custom_metadata", fit_custom_metadata(out["custom_metadata"]))
    if "environment" in out:
        _put(out, "environment", fit_environment(out["environment"]))


def _fit_start(out: dict, hook: bool) -> None:
    _fit_run_common(out, hook)
    _put_line(out, "name", 500, "(unnamed)")
    _put_line(out, "location", 1000)
    if "tags" in out:
        _put(out, "tags", fit_tags(out["tags"]))
    if hook:
        _put_line(out, "test_run_id", MAX_ID)
    else:
        _put_line(out, "vc_filepath", 1000)
        _put_line(out, "result", 50)
        if "body" in out:
            _put(out, "body", _fit_body(out["body"]))


def _fit_finish(out: dict, hook: bool) -> None:
    _fit_run_common(out, hook)
    out["result"] = _result(out.get("result"))
    if "duration_in_ms" in out:
        _put(out, "duration_in_ms", _int_ms(out["duration_in_ms"], 1))
    if "failure" in out:
        _put(out, "failure", fit_failure(out["failure"]))
    if not hook:
        if "meta" in out:
            _put(out, "meta", _fit_meta(out["meta"]))
        if "hooks" in out:
            hooks = [h for h in (_line(x, MAX_ID) for x in _as_list(out["hooks"])) if h]
            _put(out, "hooks", hooks)


def _fit_build_start(out: dict) -> None:
    _put_line(out, "name", 255, "(unnamed build)")
    _put_line(out, "project_name", 255, "(unnamed project)")
    _put_line(out, "build_run_identifier", 64)
    if "tags" in out:
        _put(out, "tags", fit_tags(out["tags"]))
    if "host_info" in out:
        _put(out, "host_info", _fit_info(out["host_info"], enums=_HOST_ENUMS))
    if "ci_info" in out:
        _put(out, "ci_info", _fit_info(out["ci_info"]))
    if "version_control" in out:
        _put(out, "version_control", _fit_info(out["version_control"], ("commit_message",)))
    if "framework" in out:
        _put(out, "framework", _fit_framework(out["framework"]))


def fit_payload(op: str, body: dict) -> dict:
    """A new body for ``op`` that is inside every limit of tra-api.md; ``body`` is not mutated.

    ``op`` is one of build_start, build_finish, test_start, test_finish, hook_start,
    hook_finish (also "logs": entries fitted with :func:`fit_log_entries`, which may split
    messages, so callers must still :func:`batch` them). Known fields are cleaned and capped,
    required string fields that are missing or empty get a placeholder, finish results outside
    the enum become ``"failed"``, non-numeric durations are dropped. Unknown fields and
    timestamps pass through unchanged; an unknown ``op`` gets a shallow copy.
    """
    if not isinstance(body, Mapping):
        return {}
    out = dict(body)
    if op == "test_start":
        _fit_start(out, hook=False)
    elif op == "test_finish":
        _fit_finish(out, hook=False)
    elif op == "hook_start":
        _fit_start(out, hook=True)
    elif op == "hook_finish":
        _fit_finish(out, hook=True)
    elif op == "build_start":
        _fit_build_start(out)
    elif op == "logs":
        out["logs"] = fit_log_entries(out.get("logs"))
    return out


# --- logs --------------------------------------------------------------------------------------
def _split_message(message: str) -> list[str]:
    """Consecutive parts ``"[part i/k] ..."``, each <= 10,000 chars, preferring line breaks."""
    digits = len(str(len(message)))  # k <= len(message): an upper bound on the marker's size
    room = MAX_LOG_MESSAGE - len(f"[part {'9' * digits}/{'9' * digits}] ")
    chunks: list[str] = []
    start, end_all = 0, len(message)
    while start < end_all:
        end = min(start + room, end_all)
        if end < end_all:
            newline = message.rfind("\n", start + room // 2, end)
            if newline != -1:
                end = newline + 1
        chunks.append(message[start:end])
        start = end
    total = len(chunks)
    return [f"[part {i}/{total}] {chunk}" for i, chunk in enumerate(chunks, 1)]


def fit_log_entries(entries: list[dict]) -> list[dict]:
    """Log entries with clean messages of <=10,000 chars; never drops message content.

    A longer message is split into consecutive entries (same other fields) whose messages are
    marked ``"[part i/k] "``. ``level`` becomes a clean single-line string (<=50); ``kind`` and
    other fields pass through. Items that are not mappings are dropped. The result may hold
    more than 500 entries: send it through :func:`batch`.
    """
    out: list[dict] = []
    for entry in _as_list(entries):
        if not isinstance(entry, Mapping):
            continue
        fitted = dict(entry)
        if "level" in fitted:
            _put_line(fitted, "level", 50)
        if "message" not in fitted:
            out.append(fitted)
            continue
        message = clean_text(fitted["message"])
        if len(message) <= MAX_LOG_MESSAGE:
            fitted["message"] = message
            out.append(fitted)
            continue
        for part in _split_message(message):
            out.append({**fitted, "message": part})
    return out


def batch(entries: list, size: int = 500) -> list[list]:
    """``entries`` in consecutive chunks of ``size`` (clamped to 1..500, the API's maximum)."""
    if isinstance(size, bool) or not isinstance(size, int):
        size = MAX_LOG_BATCH
    size = min(max(size, 1), MAX_LOG_BATCH)
    items = _as_list(entries)
    return [items[i : i + size] for i in range(0, len(items), size)]
