"""Timestamps that stay right when the code under test mocks time.

The wall clock is read once, when the run starts; every later instant is that reading
plus a monotonic offset.  The real functions are bound as default arguments: freezegun
replaces module attributes that point at the real time functions, but it does not look
inside function defaults, so a frozen or monkeypatched clock cannot reach us.
"""

from __future__ import annotations

import datetime as _dt
import time as _time

_UTC = _dt.timezone.utc


class Clock:
    """A run's clock: `now()` gives monotonic nanoseconds, `iso()` turns them into UTC text."""

    def __init__(self, _wall_ns=_time.time_ns, _mono_ns=_time.monotonic_ns) -> None:
        self._mono_ns = _mono_ns
        # now(): monotonic nanoseconds.  The clock function itself, not a method calling
        # it: it is read twice for every step.
        self.now = _mono_ns
        # epoch nanoseconds = monotonic nanoseconds + this (for loops that convert many)
        self.epoch_offset_ns = -_mono_ns() + _wall_ns()

    def epoch_ms(self, mono_ns: int | None = None) -> int:
        """Milliseconds since the epoch.  Journal drafts store these; they become ISO text
        only when a call is sent (finalize.py), off behave's thread."""
        if mono_ns is None:
            mono_ns = self._mono_ns()
        return (self.epoch_offset_ns + mono_ns) // 1_000_000

    def iso(self, mono_ns: int | None = None) -> str:
        """ISO 8601 UTC with milliseconds and a Z, e.g. 2025-11-11T10:30:05.123Z."""
        return iso_from_epoch_ms(self.epoch_ms(mono_ns))


def iso_from_epoch_ms(epoch_ms: int) -> str:
    seconds, millis = divmod(epoch_ms, 1000)
    moment = _dt.datetime(1970, 1, 1, tzinfo=_UTC) + _dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def duration_ms(start_ns: int, end_ns: int) -> int:
    """Whole milliseconds, rounded; never negative."""
    return max(0, (end_ns - start_ns + 500_000) // 1_000_000)
