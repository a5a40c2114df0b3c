"""When delivery may send: the backoff after failures, and telling an API that cannot be
reached (the uploader process; dispatch.Delivery asks, and tells it what happened).

* The pause after a failure is shared by all calls: when the service is down every call
  would fail alike, so calls sent before the current pause began fail for the same reason
  (one outage, one backoff step, however many were in flight).  Exponential, with jitter;
  a 429's Retry-After sets it exactly.
* An API is unreachable when the server has never answered, the last attempt failed to
  open a connection, and the first attempt was UNREACHABLE_AFTER seconds ago or more.
  Only once nothing more will be journaled (`armed`) does that end delivery.
"""

from __future__ import annotations

import random
import time

# Seconds of failing to connect, with no answer ever, after which the API counts as
# unreachable (README "What happens when…").  Also the longest a connection may take to
# open while nothing has answered, and retries come at least every UNREACHABLE_RETRY s.
UNREACHABLE_AFTER = 5.0
UNREACHABLE_RETRY = 2.0


class Pacing:
    def __init__(self, backoff_base: float = 0.25, backoff_cap: float = 30.0) -> None:
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.pause_until = 0.0
        self.pause_set_at = float("-inf")
        self.consecutive_failures = 0
        # Reachability: has any call had an HTTP answer, when was the first sent, and the
        # last failure to connect (None once something else happened).
        self.answered = False
        self.first_sent_at: float | None = None
        self.connect_error: str | None = None
        self.armed = False  # nothing more will be journaled: unreachable ends delivery

    def paused(self) -> bool:
        return time.monotonic() < self.pause_until

    def sending(self, now: float) -> None:
        if self.first_sent_at is None:
            self.first_sent_at = now

    def heard(self) -> bool:
        """An HTTP answer came; True if it is the first (the API is reachable: from now on
        its failures are retried as usual)."""
        if self.answered:
            return False
        self.answered = True
        self.connect_error = None
        return True

    def could_not_connect(self, error: str) -> None:
        self.connect_error = error

    def connected(self) -> None:
        if not self.answered:
            self.connect_error = None  # it connected: not "unreachable"

    def succeeded(self) -> None:
        self.consecutive_failures = 0

    def failed(self, sent: float | None, after: float | None) -> float | None:
        """A call sent at `sent` failed (`after`: the server's Retry-After); the pause
        from now, or None if the current pause already covers it."""
        now = time.monotonic()
        if (now if sent is None else sent) >= self.pause_set_at:
            self.consecutive_failures += 1
            if after is None:
                cap = self.backoff_cap if self.answered else UNREACHABLE_RETRY
                step = min(cap, self.backoff_base * 2 ** min(self.consecutive_failures, 16))
                after = random.uniform(step / 2, step)
        if after is not None:
            self.pause_until = max(self.pause_until, now + after)
            self.pause_set_at = now
        return after

    def never_reached(self) -> bool:
        """Never answered, and the last attempt failed to connect."""
        return not self.answered and self.connect_error is not None

    def unreachable(self) -> bool:
        return (
            self.never_reached()
            and self.first_sent_at is not None
            and time.monotonic() - self.first_sent_at >= UNREACHABLE_AFTER
        )

    def arm(self) -> None:
        """Nothing more will be journaled (the run ended, or `upload`)."""
        self.armed = True

    def resume_now(self) -> None:
        """Attempts failed to connect: the next goes at once rather than after the pause."""
        self.pause_until = min(self.pause_until, time.monotonic())
