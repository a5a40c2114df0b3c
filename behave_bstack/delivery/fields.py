"""Fitting one field inside the TRA API's limits: text cleaned and shortened with a
visible marker, and the lists and maps of tags, scopes, custom metadata, environment and
failures cut to their caps with a note.  The API's numbers and the caps decided here
(limits.py's docstring says which and why) live here.  Runs where bodies are finalized:
the uploader process and `behave-bstack upload/show`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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
MAX_INT = 2**53 - 1

# --- cleaning ----------------------------------------------------------------------------------
# Anything a string must not contain as-is; if neither matches, the string is already clean.
DIRTY_MULTI = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
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


def fit_text(value: object, max_len: int | None, multiline: bool, strip: bool) -> str:
    dirty = DIRTY_MULTI if multiline else _DIRTY_SINGLE
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
    return fit_text(value, _as_len(max_len), multiline, strip=False)


def _as_len(max_len: object) -> int | None:
    """A usable length limit (a bad one must not crash the caller: it becomes 0)."""
    if max_len is None or type(max_len) is int:
        return max_len
    try:
        return max(0, int(max_len))
    except Exception:
        return 0


def fit_line(value: object, max_len: int) -> str:
    """A single-line, stripped, capped field value."""
    if type(value) is str and len(value) <= max_len and not _DIRTY_SINGLE.search(value):
        return value.strip()  # fit_text's common case, without the call (the hottest path)
    return fit_text(value, max_len, multiline=False, strip=True)


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
def as_list(value: object) -> list:
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
    for item in as_list(lines):
        flat.extend(_split_lines(item))
    if len(flat) > MAX_BACKTRACE_LINES:
        head = MAX_BACKTRACE_LINES // 2
        tail = MAX_BACKTRACE_LINES - head - 1
        omitted = len(flat) - head - tail
        flat = flat[:head] + [f"…[{omitted} lines omitted]…"] + flat[len(flat) - tail :]
    return [fit_text(line, MAX_BACKTRACE_LINE, multiline=True, strip=False) for line in flat]


def fit_failure(failure: list) -> list:
    """At most 100 entries ``{"backtrace": [...]}``; an entry may be given as a dict with a
    ``backtrace``, a list of lines or a string. Entries with no text are dropped; past 100, the
    first 99 are kept and a last entry says how many were omitted."""
    out = []
    for item in as_list(failure):
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
    for tag in as_list(tags):
        text = fit_line(tag, MAX_TAG_LEN)
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
    out = [text for text in (fit_line(s, MAX_SCOPE_LEN) for s in as_list(scopes)) if text]
    if not out:
        return [fit_line(fallback, MAX_SCOPE_LEN) or "(no scope)"]
    if len(out) > MAX_SCOPES:
        head, tail = 10, MAX_SCOPES - 11
        omitted = len(out) - head - tail
        out = out[:head] + [f"…[{omitted} scopes omitted]"] + out[len(out) - tail :]
    return out


def items_of(mapping: object) -> list[tuple]:
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
    for key, value in items_of(meta):
        name = fit_line(key, MAX_META_LEN)
        if not name:
            continue
        values = [
            text
            for text in (
                fit_text(v, MAX_META_LEN, multiline=True, strip=True) for v in as_list(value)
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
    for key, value in items_of(env):
        cap = ENVIRONMENT_LIMITS.get(key) if type(key) is str else None
        if cap is not None:
            text = fit_line(value, cap)
            if text:
                out[key] = text
    return out


# --- numbers -----------------------------------------------------------------------------------
