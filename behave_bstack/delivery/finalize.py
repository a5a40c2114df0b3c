"""From a journal draft to the body that is sent.

The behave process journals drafts: bodies shaped like the API's, with times as epoch
milliseconds and nothing trimmed yet.  Turning them into ISO text and fitting them inside
the API's limits happens here, in the uploader process (or `behave-bstack upload/show`),
so that behave's own thread pays for none of it.
"""

from __future__ import annotations

from ..base.clock import iso_from_epoch_ms
from .limits import fit_log_entries, fit_payload

TIME_KEYS = ("started_at", "finished_at", "timestamp")


# ".000Z" to ".999Z": the millisecond part of every ISO text, made once.
_MILLIS = tuple(f".{millis:03d}Z" for millis in range(1000))


class _IsoCache:
    """ISO text for epoch milliseconds; the date-and-seconds part is reused, since a run's
    timestamps cluster within the same seconds."""

    def __init__(self) -> None:
        self._second = None
        self._prefix = ""

    def text(self, epoch_ms: int) -> str:
        second = epoch_ms // 1000
        if second != self._second:
            self._second = second
            self._prefix = iso_from_epoch_ms(second * 1000)[:-5]  # drop ".000Z"
        return self._prefix + _MILLIS[epoch_ms - second * 1000]


_iso = _IsoCache().text


def _times(item: dict) -> dict:
    """A copy of a dict with its int time fields as ISO text."""
    out = dict(item)
    for key in TIME_KEYS:
        if key in out:
            value = out[key]
            # type() first: the exact int of a decoded journal, without two isinstance()
            if type(value) is int or (isinstance(value, int) and type(value) is not bool):
                out[key] = _iso(value)
    return out


def iso_times(body: dict) -> dict:
    """Times live at the top level, in meta.steps[] and in logs[]: only those are looked at."""
    out = _times(body)
    meta = out.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("steps"), list):
        out["meta"] = {
            **meta,
            "steps": [_times(s) if isinstance(s, dict) else s for s in meta["steps"]],
        }
    if isinstance(out.get("logs"), list):
        out["logs"] = [_times(e) if isinstance(e, dict) else e for e in out["logs"]]
    return out


def finalize(op: str, draft: dict) -> dict:
    body = iso_times(draft)
    if op == "logs":
        return {"logs": fit_log_entries(body.get("logs") or [])}
    return fit_payload(op, body)
