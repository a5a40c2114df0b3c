"""Independent check of TRA request bodies against /work/shared/tra-api.md (§2 and §3).

``validate(op, body)`` returns human-readable errors, each starting with the field path
(``"meta.steps[3].failure: longer than 5000 characters"``); an empty list means valid.

This module is deliberately written apart from the client's payload builders so that a
bug in one is caught by the other. It follows tra-api.md's [DOC] and [DECIDED] rules and a
few choices of its own, all stricter than or equal to the documented contract:

- timestamps must carry a zone (``Z`` or ``±HH:MM``) and name a real date/time;
- integers documented as milliseconds/sizes (step ``duration``, log ``duration``,
  ``file_size``) must be >= 0; ``duration_in_ms`` must be >= 1 (documented "positive");
- every failure entry must hold a ``backtrace`` list;
- a known field sent as ``null`` is a type error (absent fields must be omitted);
- a ``logs`` request must carry at least one entry;
- no string anywhere in the body (keys included, unknown fields included) may contain NUL
  or a lone surrogate: the real service would choke and the client must never send them.

Unknown fields (top level or nested) are ignored, except for the NUL/surrogate check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

Check = Callable[[object, str, list], None]

OPS = (
    "build_start",
    "build_finish",
    "test_start",
    "test_finish",
    "hook_start",
    "hook_finish",
    "logs",
)
RESULTS = ("passed", "failed", "skipped", "timeout")
LOG_KINDS = ("TEST_LOG", "HOOK_LOG", "HTTP", "TEST_SCREENSHOT", "TEST_STEP", "TEST_ATTACHMENT")
ATTACHMENT_TYPES = ("MANUAL_UPLOAD", "AUTO_UPLOAD", "SCREENSHOT", "LOG_FILE")
PLATFORMS = ("linux", "darwin", "win32")
HOST_TYPES = ("physical", "virtual", "container")
ARCHS = ("x64", "arm64")
MAX_LOG_ENTRIES = 500

# field ranges live in the pattern (cheap); only days 29-31 need a calendar check
_TS = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(?:\.\d{1,9})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)\Z",
    re.ASCII,
)
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


def _tname(v: object) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(
        type(v), "array" if isinstance(v, list) else "object" if isinstance(v, dict) else "?"
    )


def _short(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


# --- leaf checks -------------------------------------------------------------------------


def _str(max_len: int | None = None, enum: tuple[str, ...] | None = None) -> Check:
    def check(v: object, path: str, errs: list) -> None:
        if type(v) is not str:
            errs.append(f"{path}: expected a string, got {_tname(v)}")
        elif max_len is not None and len(v) > max_len:
            errs.append(f"{path}: longer than {max_len} characters ({len(v)})")
        elif enum is not None and v not in enum:
            errs.append(f"{path}: must be one of {', '.join(enum)}; got {_short(v)}")

    return check


def _int(minimum: int | None = None, maximum: int | None = None) -> Check:
    def check(v: object, path: str, errs: list) -> None:
        if type(v) is not int:  # bool is an int subclass: excluded on purpose
            errs.append(f"{path}: expected an integer, got {_tname(v)}")
        elif minimum is not None and v < minimum:
            errs.append(f"{path}: must be >= {minimum}; got {v}")
        elif maximum is not None and v > maximum:
            errs.append(f"{path}: must be <= {maximum}; got {v}")

    return check


def _bool(v: object, path: str, errs: list) -> None:
    if type(v) is not bool:
        errs.append(f"{path}: expected a boolean, got {_tname(v)}")


def _timestamp(v: object, path: str, errs: list) -> None:
    if type(v) is not str:
        errs.append(f"{path}: expected an ISO 8601 timestamp string, got {_tname(v)}")
        return
    ok = _TS.match(v) is not None
    if ok and v[8:10] > "28":
        try:
            date(int(v[:4]), int(v[5:7]), int(v[8:10]))
        except ValueError:
            ok = False
    if not ok:
        errs.append(f"{path}: not an ISO 8601 timestamp with a zone; got {_short(v)}")


def _list(item: Check, max_items: int | None = None, min_items: int = 0) -> Check:
    if max_items is None:
        bounds = f"at least {min_items}"
    else:
        bounds = f"at most {max_items}" if min_items == 0 else f"{min_items} to {max_items}"

    def check(v: object, path: str, errs: list) -> None:
        if not isinstance(v, list):
            errs.append(f"{path}: expected an array, got {_tname(v)}")
            return
        n = len(v)
        too_many = max_items is not None and n > max_items
        if too_many or n < min_items:
            errs.append(f"{path}: expected {bounds} items; got {n}")
            if too_many:
                return  # do not drown the real message in per-item noise
        for i, x in enumerate(v):
            item(x, f"{path}[{i}]", errs)

    return check


def _obj(fields: dict[str, Check], required: tuple[str, ...] = ()) -> Check:
    def check(v: object, path: str, errs: list) -> None:
        if not isinstance(v, dict):
            errs.append(f"{path}: expected an object, got {_tname(v)}")
            return
        _fields(v, path + ".", fields, required, errs)

    return check


def _fields(
    v: dict, prefix: str, fields: dict[str, Check], required: tuple[str, ...], errs: list
) -> None:
    for name in required:
        if name not in v:
            errs.append(f"{prefix}{name}: required")
    for name, value in v.items():
        check = fields.get(name)
        if check is not None:  # null is a type error too: absent fields must be omitted
            check(value, prefix + name, errs)


# --- shared objects (§3) ----------------------------------------------------------------


def _custom_metadata(v: object, path: str, errs: list) -> None:
    if not isinstance(v, dict):
        errs.append(f"{path}: expected an object, got {_tname(v)}")
        return
    if len(v) > 25:
        errs.append(f"{path}: at most 25 keys; got {len(v)}")
    for key, values in v.items():
        kpath = f"{path}.{str(key)[:40]}"
        if not isinstance(key, str):
            errs.append(f"{kpath}: key must be a string")
        elif len(key) > 500:
            errs.append(f"{kpath}: key longer than 500 characters ({len(key)})")
        if isinstance(values, str):
            values = [values]  # a single string is accepted as a one-value list
        elif not isinstance(values, list):
            errs.append(f"{kpath}: expected a string or an array of strings, got {_tname(values)}")
            continue
        if len(values) > 10:
            errs.append(f"{kpath}: at most 10 values; got {len(values)}")
        for i, x in enumerate(values):
            _META_VALUE(x, f"{kpath}[{i}]", errs)


_META_VALUE = _str(500)
_ENVIRONMENT = _obj(
    {
        "device": _str(100),
        "os": _str(100),
        "os_version": _str(50),
        "browser": _str(100),
        "browser_version": _str(50),
    }
)
_SCOPES = _list(_str(100), max_items=20, min_items=1)
_TAGS = _list(_str(100), max_items=50)
_FAILURE = _list(_obj({"backtrace": _list(_str(2000), max_items=1000)}, ("backtrace",)), 100)


def _unique_step_ids(v: object, path: str, errs: list) -> None:
    _STEPS(v, path, errs)
    if isinstance(v, list):
        seen: dict[str, int] = {}
        for i, step in enumerate(v):
            sid = step.get("id") if isinstance(step, dict) else None
            if type(sid) is str:
                if sid in seen:
                    errs.append(
                        f"{path}[{i}].id: duplicate of {path}[{seen[sid]}].id ({_short(sid)})"
                    )
                else:
                    seen[sid] = i


_STEPS = _list(
    _obj(
        {
            "id": _str(),
            "keyword": _str(),
            "text": _str(),
            "started_at": _timestamp,
            "finished_at": _timestamp,
            "result": _str(enum=RESULTS),
            "duration": _int(0),
            "failure": _str(5000),
        },
        ("id",),
    )
)
_META = _obj({"steps": _unique_step_ids})

# --- per-operation schemas (§2) -----------------------------------------------------------

_FINISH_COMMON = {
    "result": _str(enum=RESULTS),
    "finished_at": _timestamp,
    "file_name": _str(1000),
    "scopes": _SCOPES,
    "duration_in_ms": _int(1),
    "failure": _FAILURE,
    "custom_metadata": _custom_metadata,
    "environment": _ENVIRONMENT,
    "meta": _META,
}


_HTTP_RESPONSE = _obj({"status_code": _int(100, 599), "method": _str()})


def _log_entry(v: object, path: str, errs: list) -> None:
    _LOG_ENTRY(v, path, errs)
    if isinstance(v, dict):
        has_test = "test_run_uuid" in v
        has_hook = "hook_run_uuid" in v
        if has_test == has_hook:
            errs.append(
                f"{path}: exactly one of test_run_uuid / hook_run_uuid is required"
                + ("; got both" if has_test else "; got neither")
            )


_LOG_ENTRY = _obj(
    {
        "kind": _str(enum=LOG_KINDS),
        "test_run_uuid": _str(),
        "hook_run_uuid": _str(),
        "timestamp": _timestamp,
        "level": _str(),
        "message": _str(10_000),
        "duration": _int(0),
        "failure": _bool,
        "file_name": _str(),
        "file_size": _int(0),
        "attachment_type": _str(enum=ATTACHMENT_TYPES),
        "http_response": _HTTP_RESPONSE,
    },
    ("kind", "timestamp"),
)

# op -> (fields, required)
SCHEMAS: dict[str, tuple[dict[str, Check], tuple[str, ...]]] = {
    "build_start": (
        {
            "name": _str(255),
            "project_name": _str(255),
            "started_at": _timestamp,
            "tags": _TAGS,
            "build_run_identifier": _str(64),
            "host_info": _obj(
                {
                    "hostname": _str(),
                    "platform": _str(enum=PLATFORMS),
                    "type": _str(enum=HOST_TYPES),
                    "version": _str(),
                    "arch": _str(enum=ARCHS),
                }
            ),
            "ci_info": _obj(
                {k: _str() for k in ("name", "build_url", "url", "build_number", "job_name")}
            ),
            "version_control": _obj(
                {
                    k: _str()
                    for k in (
                        "name",
                        "sha",
                        "branch",
                        "tag",
                        "commit_message",
                        "committer_name",
                        "committer_email",
                    )
                }
            ),
            "framework": _obj({"name": _str(), "version": _str()}, ("name", "version")),
        },
        ("name", "project_name", "started_at"),
    ),
    "build_finish": ({"finished_at": _timestamp}, ("finished_at",)),
    "test_start": (
        {
            "name": _str(500),
            "file_name": _str(1000),
            "scopes": _SCOPES,
            "started_at": _timestamp,
            "tags": _TAGS,
            "location": _str(1000),
            "vc_filepath": _str(1000),
            "result": _str(50),
            "custom_metadata": _custom_metadata,
            "environment": _ENVIRONMENT,
            "body": _obj({"lang": _str(), "code": _str()}),
        },
        ("name", "file_name", "scopes", "started_at"),
    ),
    "test_finish": (
        {**_FINISH_COMMON, "hooks": _list(_str())},
        ("result", "finished_at", "file_name", "scopes"),
    ),
    "hook_start": (
        {
            "hook_type": _str(50),
            "name": _str(500),
            "file_name": _str(1000),
            "scopes": _SCOPES,
            "started_at": _timestamp,
            "test_run_id": _str(),
            "tags": _TAGS,
            "location": _str(1000),
            "custom_metadata": _custom_metadata,
            "environment": _ENVIRONMENT,
        },
        ("hook_type", "name", "file_name", "scopes", "started_at"),
    ),
    "hook_finish": (
        {**_FINISH_COMMON, "hook_type": _str(50)},
        ("hook_type", "result", "finished_at", "file_name", "scopes"),
    ),
    "logs": (
        {"logs": _list(_log_entry, max_items=MAX_LOG_ENTRIES, min_items=1)},
        ("logs",),
    ),
}


def _bad_text(v: object, path: str, errs: list) -> None:
    """Report NUL characters and lone surrogates anywhere in the body (keys included)."""
    if isinstance(v, str):
        # isascii() is O(1) and rules out surrogates; "in" is a memchr
        if ("\x00" in v) if v.isascii() else _BAD_CHARS.search(v) is not None:
            errs.append(f"{path or 'body'}: contains a NUL character or a lone surrogate")
    elif isinstance(v, dict):
        for k, x in v.items():
            name = str(k)[:40]
            sub = f"{path}.{name}" if path else name
            if isinstance(k, str) and _BAD_CHARS.search(k) is not None:
                errs.append(f"{sub}: key contains a NUL character or a lone surrogate")
            _bad_text(x, sub, errs)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _bad_text(x, f"{path}[{i}]", errs)


def validate(op: str, body: object, *, check_text: bool = True) -> list[str]:
    """Return the list of contract violations of ``body`` for operation ``op``.

    ``check_text=False`` skips the NUL/lone-surrogate scan; a caller that has proved the
    raw JSON text cannot produce such characters (no ``\\u0000``/``\\uD8xx`` escapes) uses
    it to save CPU.
    """
    schema = SCHEMAS.get(op)
    if schema is None:
        raise ValueError(f"unknown operation {op!r}; expected one of {', '.join(OPS)}")
    if not isinstance(body, dict):
        return [f"body: expected a JSON object, got {_tname(body)}"]
    errs: list[str] = []
    fields, required = schema
    _fields(body, "", fields, required, errs)
    if check_text:
        _bad_text(body, "", errs)
    return errs
