"""Reading and showing one raw setting value: booleans, tags, ${VAR} expansion, YAML
errors, and text with any secret or URL password taken out.  Runs in behave's process and
in the command.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_BOOL_WORDS = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def absent(raw: Any) -> bool:
    # An empty value counts as unset: CI systems often export empty variables.
    if isinstance(raw, str):
        return not raw.strip()
    return raw is None or raw == []


def scalar_text(raw: Any) -> str | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (str, int, float, date)):
        return str(raw)
    return None


def parse_bool(raw: Any) -> tuple[bool, Any, str | None]:
    if isinstance(raw, bool):
        return True, raw, None
    if isinstance(raw, (str, int)) and str(raw).strip().lower() in _BOOL_WORDS:
        return True, _BOOL_WORDS[str(raw).strip().lower()], None
    return False, None, "is not a yes/no value (true/false, yes/no, on/off, 1/0)"


def parse_tags(raw: Any) -> tuple[bool, Any, str | None]:
    items = raw if isinstance(raw, list) else [raw]
    tags: list[str] = []
    for item in items:
        text = scalar_text(item)
        if text is None:
            return False, None, "is not a tag or a list of tags"
        # A single string may hold several comma-separated tags (-D bstack.build_tags=a,b).
        tags += [t.strip() for t in text.split(",") if t.strip()] if item is raw else [text.strip()]
    return True, tuple(t for t in tags if t), None


def keep_identifier_vars(name: str) -> str | None:
    # Left for Resolver._build_identifier, which expands them in the value that wins.
    return f"${{{name}}}" if name in ("BUILD_NUMBER", "DATE_TIME") else None


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    def repl(match: re.Match[str]) -> str:
        value = lookup(match.group(1))
        return match.group(0) if value is None else value

    return _VAR_RE.sub(repl, text)


def redact_url(url: str) -> str:
    """The URL without any user:password part (proxies often carry one)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"****@{host}"))


def yaml_error(exc: Exception) -> str:
    # Never str(exc): PyYAML quotes the offending source line, which may hold the access key.
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"invalid YAML: {problem} at line {mark.line + 1}, column {mark.column + 1}"
    return f"invalid YAML ({type(exc).__name__})"


def yaml_type(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def display(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "none"
    return str(value)


def scrub(text: str, secret: str | None) -> str:
    # Defence in depth: should a value ever echo the access key (say through ${VAR}),
    # hide it. Very short keys are not real keys and would mangle unrelated text.
    if secret and len(secret) >= 6:
        return text.replace(secret, "****")
    return text
