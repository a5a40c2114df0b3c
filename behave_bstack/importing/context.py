"""What every report reader of `behave-bstack import` shares: the context it writes into,
its one error, and reading a JSON report a feature at a time (the import's process)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .jsonstream import NotAnArray, array_items
from .model import Paths, ReportWriter


class ReportError(ValueError):
    """The file is not a report this command reads (one line for the user)."""


@dataclass
class ImportContext:
    sink: ReportWriter
    paths: Paths
    about_report: Callable[[str], None]  # a line about the report; the command prefixes it
    anchor_ms: int  # when the report was written (its file's time), for timelines


def json_features(path: str):
    """The features of a JSON report, one at a time; a ReportError where it is broken."""
    with open(path, encoding="utf-8-sig") as handle:
        try:
            yield from array_items(handle)
        except NotAnArray as exc:
            raise ReportError(f"not valid JSON: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ReportError(f"not UTF-8 text: {exc}") from None
