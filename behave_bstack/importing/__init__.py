"""`behave-bstack import`: reports of other runs (Cucumber Messages, Cucumber JSON,
behave's own `-f json`) read into the journal, to be delivered like a behave run's.

Runs in the `behave-bstack import` process.  One module per format reads its report,
streamed, into model.Test / model.Hook objects; model.ReportWriter journals them.  The
command (command/import_report.py) chooses the journal, and delivers it.
"""

from __future__ import annotations

import os

from .context import ImportContext, ReportError, json_features  # noqa: F401 - the package's API
from .model import Paths, ReportWriter

FORMATS = ("messages", "cucumber-json", "behave-json")


def detect_format(path: str) -> str:
    """messages, cucumber-json or behave-json, from the start of the file."""
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        head = handle.read(1 << 16)
    text = head.lstrip()
    if text.startswith("{"):
        return "messages"
    if text.startswith("["):
        first = _first_element(path)
        if first is None:
            return "behave-json"  # an empty array: nothing to import either way
        if isinstance(first, dict):
            if "uri" in first or "id" in first:
                return "cucumber-json"
            if "location" in first or "status" in first:
                return "behave-json"
    raise ReportError(
        "not a report this command reads (Cucumber Messages NDJSON, Cucumber JSON or "
        "behave's -f json)"
    )


def _first_element(path: str):
    from .jsonstream import NotAnArray, array_items

    with open(path, encoding="utf-8-sig") as handle:
        try:
            for item in array_items(handle):
                return item
        except (NotAnArray, UnicodeDecodeError) as exc:
            raise ReportError(f"not valid JSON: {exc}") from None
    return None


def read_report(path: str, fmt: str, context: ImportContext) -> None:
    """Journal one report file (through context.sink)."""
    if fmt == "messages":
        from .messages import read
    elif fmt == "cucumber-json":
        from .cucumber_json import read
    elif fmt == "behave-json":
        from .behave_json import read
    else:  # pragma: no cover - argparse offers only FORMATS
        raise ReportError(f"unknown format {fmt!r}")
    read(path, context)


def file_time_ms(path: str) -> int:
    try:
        return int(os.stat(path).st_mtime * 1000)
    except OSError:
        import time

        return time.time_ns() // 1_000_000


__all__ = ["FORMATS", "ImportContext", "Paths", "ReportError", "ReportWriter", "detect_format"]
