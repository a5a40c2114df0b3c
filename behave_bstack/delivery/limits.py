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
from collections.abc import Mapping

from .fields import (
    DIRTY_MULTI,
    MAX_CODE,
    MAX_COMMIT_MESSAGE,
    MAX_ID,
    MAX_INFO_VALUE,
    MAX_INT,
    MAX_LOG_BATCH,
    MAX_LOG_MESSAGE,
    MAX_STEP_FAILURE,
    MAX_STEP_TEXT,
    RESULTS,
    TRUNCATION_MARKER,
    as_list,
    clean_text,
    clip_middle,
    fit_backtrace,
    fit_custom_metadata,
    fit_environment,
    fit_failure,
    fit_line,
    fit_scopes,
    fit_tags,
    fit_text,
    items_of,
)

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


def _int_ms(value: object, minimum: int) -> int | None:
    """A duration as an int >= minimum, or None when it is not a finite number."""
    if type(value) is int and minimum <= value <= MAX_INT:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = round(value)
    return min(max(int(value), minimum), MAX_INT)


def _result(value: object) -> str:
    """``value`` if it is one of the API's results (any case), else ``"failed"``."""
    if type(value) is str and value in RESULTS:
        return value
    text = fit_line(value, 20).lower()
    return text if text in RESULTS else "failed"


# --- payloads ----------------------------------------------------------------------------------
def _put_line(out: dict, key: str, max_len: int, placeholder: str | None = None) -> None:
    """Clean ``out[key]`` in place (single-line); empty -> placeholder, or dropped if optional."""
    text = fit_line(out[key], max_len) if key in out else ""
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
    for key, value in items_of(info):
        name = fit_line(key, MAX_ID)
        if not name or value is None:
            continue
        if name in long_text:
            text = fit_text(value, MAX_COMMIT_MESSAGE, multiline=True, strip=True)
        else:
            text = fit_line(value, MAX_INFO_VALUE)
        if enums and name in enums:
            text = enums[name].get(text.lower(), "")
        if text:
            out[name] = text
    return out


def _fit_framework(framework: object) -> dict | None:
    if not isinstance(framework, Mapping):
        return None
    name = fit_line(framework.get("name"), 100)
    version = fit_line(framework.get("version"), 100)
    return {"name": name, "version": version} if name and version else None


def _fit_body(code_body: object) -> dict | None:
    if not isinstance(code_body, Mapping):
        return None
    out = dict(code_body)
    _put_line(out, "lang", 50)
    if "code" in out:
        _put(out, "code", fit_text(out["code"], MAX_CODE, multiline=True, strip=False))
    return out or None


def _fit_steps(steps: object) -> list[dict]:
    out: list[dict] = []
    seen: set[str] = set()
    for index, step in enumerate(as_list(steps), 1):
        if type(step) is not dict and not isinstance(step, Mapping):
            continue
        fitted = dict(step)
        step_id = fit_line(fitted.get("id"), MAX_ID) or f"step-{index}"
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
                and not DIRTY_MULTI.search(text)
            ):
                _put(fitted, "text", fit_text(text, MAX_STEP_TEXT, True, False))
        if "failure" in fitted:
            text = clip_middle(fit_text(fitted["failure"], None, True, False), MAX_STEP_FAILURE)
            _put(fitted, "failure", text)
        if "result" in fitted:
            result = fitted["result"]
            if type(result) is not str or result not in RESULTS:
                _put(fitted, "result", _result(result) if fit_line(result, 20) else "")
        if "duration" in fitted:
            duration = fitted["duration"]
            if not (type(duration) is int and 0 <= duration <= MAX_INT):  # else: as it is
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
            hooks = [h for h in (fit_line(x, MAX_ID) for x in as_list(out["hooks"])) if h]
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
    for entry in as_list(entries):
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
    items = as_list(entries)
    return [items[i : i + size] for i in range(0, len(items), size)]
