"""From a journal draft to the body that is sent.

The behave process journals drafts: bodies shaped like the API's, with times as epoch
milliseconds and nothing trimmed yet.  Turning them into ISO text and fitting them inside
the API's limits happens here, in the uploader process (or `behave-bstack upload/show`),
so that behave's own thread pays for none of it.
"""

from __future__ import annotations

from .clock import iso_from_epoch_ms
from .limits import fit_log_entries, fit_payload

TIME_KEYS = frozenset({"started_at", "finished_at", "timestamp"})


def iso_times(value):
    """A copy of value with every int under a time key turned into ISO 8601 text."""
    if isinstance(value, dict):
        return {
            key: iso_from_epoch_ms(item)
            if key in TIME_KEYS and isinstance(item, int) and not isinstance(item, bool)
            else iso_times(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [iso_times(item) for item in value]
    return value


def finalize(op: str, draft: dict) -> dict:
    body = iso_times(draft)
    if op == "logs":
        return {"logs": fit_log_entries(body.get("logs") or [])}
    return fit_payload(op, body)
