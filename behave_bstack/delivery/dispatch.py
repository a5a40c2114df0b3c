"""Delivery: send a run's journal to TRA in dependency order, many calls in flight.

One Delivery owns one journal directory, and runs in one thread: transport.Sender keeps
many calls in flight over non-blocking connections.  The rules:

* An event waits until the ids it needs are known: the build's id, the id of the test or
  hook it finishes, and every {"$ref": ...} in its body.
* 2xx: acknowledged (start calls record the id the server issued).  Acks are appended to
  acks.jsonl (once per loop turn), so a later `behave-bstack upload` never repeats them.
* 408, 429, 5xx, connection errors and timeouts: retried with exponential backoff and
  jitter.  The pause is shared by all calls (when the service is down, every call would
  fail alike: one outage is one backoff step); a 429's Retry-After sets it exactly.
* 401/403 and fatal transport errors (TLS verification, proxy auth): delivery stops at
  once with one message; the journal keeps everything.
* An unreachable API: when the server has never answered and every attempt failed to open
  a connection (refused, a name that does not resolve, packets dropped), delivery stops
  UNREACHABLE_AFTER seconds after its first attempt, once there is nothing left to wait
  for (the run ended, or `upload`), instead of retrying until the flush deadline.  A server
  that answered once is not unreachable: its failures are retried as usual.
* Any other 4xx: that event is marked failed with the server's message, its dependants
  are marked failed too, and everything else continues.
* build_finish goes last, after every other event is settled.

Memory does not grow with the run: the journal is read in bounded pieces, at most WINDOW
unsettled events ahead of what is answered (a dependency always comes earlier in the
journal, so what is read can always go); what is remembered across the whole run is small
per call: the acks read at the start (journal/acks.py), the server ids of starts
(ids.py) and the runs not yet finished (closing.RunState).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path

from ..base.defaults import DEFAULT_CONCURRENCY
from ..journal import acks as ack_index
from ..journal import coordination
from ..journal import store as journal
from .closing import RunState, closing_records
from .finalize import finalize
from .ids import ServerIds
from .links import FAILED, describe, refs_in, resolve
from .pacing import UNREACHABLE_AFTER, Pacing
from .routes import ROUTES, SENDABLE, STARTS, build_url, path_for
from .transport import Response, Sender, Transport, TransportError

__all__ = ["Delivery", "FAILED", "UNREACHABLE_AFTER", "describe", "refs_in", "retry_after"]

log = logging.getLogger("behave_bstack")

FOLLOW_WAIT = 0.01  # seconds; about 100 idle turns a second, each a read of the journal's end
DEFER = "defer"
# Unsettled events held at once: enough to keep every call in flight busy (a few KB each).
WINDOW = 1000


class Tally:
    """What delivery counted, for the report."""

    def __init__(self) -> None:
        self.delivered: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self.retries = 0
        self.log_entries = 0
        self.reasons: list[str] = []

    def count(self, bucket: dict[str, int], op: str) -> None:
        bucket[op] = bucket.get(op, 0) + 1


class Delivery:
    def __init__(
        self,
        directory: Path,
        transport: Transport | None,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_attempts: int | None = None,
        backoff_base: float = 0.25,
        backoff_cap: float = 30.0,
    ) -> None:
        self.directory = Path(directory)
        self.transport = transport
        self.concurrency = max(1, concurrency)
        self.max_attempts = max_attempts
        self.pacing = Pacing(backoff_base, backoff_cap)
        self.reader = journal.EventReader(self.directory / journal.EVENTS)
        self.acks = ack_index.AckIndex(self.directory)
        self.ack_log: journal.AckLog | None = None
        self.ids = ServerIds()  # ref -> the server's id (or FAILED)
        self.run = RunState()
        self.events: dict[int, dict] = {}  # seq -> event not yet settled
        self.links: dict[int, list[str]] = {}  # seq -> refs_in(its body), if it has any
        self.attempts: dict[int, int] = {}
        self.ready: deque[int] = deque()  # may be sendable: checked in order
        self.blocked: dict[str, list[int]] = {}  # ref -> events waiting for its server id
        self.deferred: list[int] = []  # build finishes waiting for everything else
        self.in_flight: set[int] = set()
        self.sent_at: dict[int, float] = {}
        self.interim_written = False
        self.stop_reason: str | None = None
        self.stop_kind: str | None = None
        self.stopping = threading.Event()
        self.tally = Tally()
        self.sender: Sender | None = None
        if transport is not None:
            transport.connect_timeout = UNREACHABLE_AFTER

    @property
    def ended(self) -> bool:
        """The writer closed the run (an "end" event was read)."""
        return self.run.ended

    @property
    def meta(self) -> dict:
        return self.run.meta

    # -- reading the journal ------------------------------------------------
    def load_new(self) -> int:
        """Read what the journal gained, up to WINDOW unsettled events; returns how many
        records were read."""
        taken = 0
        while len(self.events) < WINDOW:
            records = self.reader.read_new(journal.READ_LIMIT)
            for record in records:
                self._take(record)
            taken += len(records)
            if self.reader.at_end:
                break
        return taken

    def caught_up(self) -> bool:
        """Everything the journal holds has been read (as of the last read)."""
        return self.reader.at_end

    def _take(self, record: dict) -> None:
        if not self.run.note(record):
            if record.get("op") == "meta" and self.run.meta.get("build_hashed_id"):
                self.ids["build"] = self.run.meta["build_hashed_id"]
            return
        seq, op, ref = record["seq"], record["op"], record.get("ref")
        status = self.acks.status(seq)
        if status == ack_index.OK:
            if op in STARTS and ref:
                self.ids[ref] = self.acks.take_id(seq)
            self._count_delivered(op, record.get("body") or {})
            return
        if status == ack_index.REFUSED:
            if ref and op in STARTS:
                self.ids[ref] = FAILED
            return
        self.events[seq] = record
        links = refs_in(record.get("body") or {})
        if links:
            self.links[seq] = links  # found once: an event may be looked at several times
        self.ready.append(seq)

    # -- the loop -----------------------------------------------------------
    def start(self) -> None:
        if self.transport is None or self.sender is not None:
            return
        if self.ack_log is None:
            self.ack_log = journal.AckLog(self.directory)
        self.sender = Sender(self.transport, self.concurrency)

    def step(self, wait: float = 0.05) -> None:
        """One turn of the loop: send what can go, progress the calls in flight and settle
        those that ended (waiting up to `wait` seconds for one), send what that unblocked."""
        self._dispatch()
        if self.sender is not None:
            for key, response, error in self.sender.poll(wait):
                self._settle(key, response, error)
        elif wait:
            time.sleep(wait)
        if self.ack_log is not None:
            self.ack_log.flush()  # one write for all the answers of this turn
        self._dispatch()

    def settled(self) -> bool:
        return not self.events and not self.in_flight and self.caught_up()

    def only_waiting(self, for_outer: bool = False) -> bool:
        """Everything is delivered but a build finish that waits for other processes
        (with for_outer: for behavex's main process, which behave must not wait for)."""
        return (
            not self.in_flight
            and bool(self.events)
            and self.caught_up()
            and all(
                e.get("wait") and (e["wait"].get("pid") or not for_outer)
                for e in self.events.values()
            )
        )

    def run_until(self, deadline: float, follow: bool = False, alive=lambda: True) -> None:
        """Deliver until everything is settled (and, when following, the run has ended),
        the deadline passes, or delivery was stopped."""
        self.start()
        while not self.stopping.is_set() and time.monotonic() < deadline:
            if follow or not self.caught_up():
                self.load_new()
            if self.settled() and (self.ended or not follow):
                break
            if not self.pacing.armed and (self.ended or not follow):
                self._arm_unreachable()
            if follow and self.ended and self.only_waiting(True) and not self.interim_written:
                # behave may go: only a build finish for the last process is left.
                journal.write_report(self.directory, self.report())
                self.interim_written = True
            if follow and not alive():
                return  # the writer died: the caller decides how to close its runs
            if self.stop_reason:
                break
            # While behave writes, a turn with nothing in flight ends after FOLLOW_WAIT: new
            # events (and the run's end, which behave waits on) are seen that much later.
            self.step(FOLLOW_WAIT if follow and not self.ended else 0.05)

    def shutdown(self, drain: float = 5.0) -> None:
        """Stop.  Answers to calls still in flight are awaited (up to `drain` seconds) and
        recorded: the server acts on them, and an unrecorded one would be sent again."""
        deadline = time.monotonic() + drain
        while self.sender is not None and self.in_flight and time.monotonic() < deadline:
            for key, response, error in self.sender.poll(min(0.05, deadline - time.monotonic())):
                self._settle(key, response, error)
        if self.sender is not None:
            self.sender.close()
            self.sender = None
        if self.ack_log is not None:
            self.ack_log.flush()
            self.ack_log.close()
            self.ack_log = None

    # -- dispatch -----------------------------------------------------------
    def _dispatch(self) -> None:
        if self.transport is None or self.stop_reason:
            return
        if self.pacing.paused():
            return
        if (
            self.deferred
            and len(self.events) == len(self.deferred)
            and not self.in_flight
            and self.caught_up()
        ):
            self.ready.extend(self.deferred)  # everything else is settled: time to finish
            self.deferred = []
        while self.ready and len(self.in_flight) < self.concurrency:
            seq = self.ready.popleft()
            event = self.events.get(seq)
            if event is None:
                continue
            verdict = self._blocked_by(seq, event)
            if verdict is None:
                self._send(seq, event)
            elif verdict == DEFER:
                self.deferred.append(seq)
            elif verdict.startswith("@"):
                self.blocked.setdefault(verdict[1:], []).append(seq)
            else:
                self._fail(seq, event, None, verdict)

    def _blocked_by(self, seq: int, event: dict) -> str | None:
        """None when the event can go now; "@ref" to wait for ref's server id; DEFER for a
        build finish that must wait for everything else; otherwise why it must fail."""
        op = event["op"]
        build = self.ids.get("build")
        if op != "build_start":
            if build is FAILED:
                return "the build could not be started"
            if build is None:
                return "@build"
        if op in ("test_finish", "hook_finish"):
            target = self.ids.get(event.get("ref"))
            if target is FAILED:
                return f"its start ({event.get('ref')}) was refused"
            if target is None:
                return "@" + event.get("ref", "")
        if op == "build_finish":
            if len(self.events) > 1 or self.in_flight or not self.caught_up():
                return DEFER
            wait = event.get("wait")
            if wait and not coordination.wait_satisfied(wait.get("dir"), wait.get("pid")):
                return DEFER
        for ref in self.links.get(seq, ()):
            if self.ids.get(ref) is None:
                return "@" + ref
        return None

    def _known(self, ref: str, server_id) -> None:
        """ref's server id (or FAILED) is known: what waited for it may go."""
        self.ids[ref] = server_id
        waiting = self.blocked.pop(ref, None)
        if waiting:
            self.ready.extend(waiting)

    def _prepare(self, seq: int, event: dict) -> tuple[str, str, dict]:
        """The operation, the path and the draft with server ids in place of links."""
        op = event["op"]
        target = self.ids.get(event.get("ref")) if op in ("test_finish", "hook_finish") else None
        path = path_for(op, self.ids.get("build"), target)
        body = event.get("body") or {}
        body = resolve(body, self.ids) if seq in self.links else dict(body)  # no links: copy
        if event.get("wait"):
            body["finished_at"] = int(time.time() * 1000)  # the keeper finishes it now
        return op, path, body

    def _send(self, seq: int, event: dict) -> None:
        op, path, draft = self._prepare(seq, event)
        if op == "logs" and not draft.get("logs"):
            self._fail(seq, event, None, "its test or hook run was refused", quiet=True)
            return
        try:
            body = finalize(op, draft)
        except Exception as exc:  # noqa: BLE001 - a bug in fitting: this item only
            self._fail(seq, event, None, f"could not build the body: {exc!r}")
            return
        self.in_flight.add(seq)
        self.sent_at[seq] = time.monotonic()
        self.pacing.sending(self.sent_at[seq])
        self.sender.submit(seq, ROUTES[op][0], path, body)

    # -- answers ------------------------------------------------------------
    def _settle(self, seq: int, response: Response | None, error: TransportError | None) -> None:
        """What one attempt ended with: an answer, or an error that got none."""
        self.in_flight.discard(seq)
        sent = self.sent_at.pop(seq, None)
        if response is not None and self.pacing.heard() and self.transport is not None:
            self.transport.connect_timeout = None  # reachable: no shorter connect timeout
        event = self.events.get(seq)
        if event is None:
            return
        if error is not None:
            if error.fatal:
                self._stop(str(error), error.kind)
                self.ready.append(seq)
            elif not self.pacing.answered and getattr(error, "connecting", False):
                self.pacing.could_not_connect(str(error))
                if self.pacing.armed and self.pacing.unreachable():
                    self._stop_unreachable()
                    self.ready.append(seq)
                else:
                    self._retry(seq, str(error), sent=sent)
            else:
                self.pacing.connected()
                self._retry(seq, str(error), sent=sent)
            return
        status = response.status
        if 200 <= status < 300:
            self._acknowledge(seq, event, response)
        elif status in (401, 403):
            self._stop(
                f"BrowserStack refused the credentials ({status} {response.message()}); "
                "check BROWSERSTACK_USERNAME and BROWSERSTACK_ACCESS_KEY",
                "credentials",
            )
            self.ready.append(seq)
        elif status in (408, 429) or status >= 500:
            self._retry(seq, f"HTTP {status} {response.message()}", retry_after(response), sent)
        else:
            self._fail(seq, event, status, f"HTTP {status}: {response.message()}")

    def _acknowledge(self, seq: int, event: dict, response: Response) -> None:
        op, ref = event["op"], event.get("ref")
        server_id = None
        if op in STARTS:
            data = response.json() or {}
            server_id = data.get(ROUTES[op][2])
            if not isinstance(server_id, str) or not server_id:
                self._retry(seq, f"HTTP {response.status} answer without {ROUTES[op][2]}")
                return
            self._known(ref, server_id)
        self.pacing.succeeded()
        fields = {"ok": True}
        if server_id:
            fields["id"] = server_id
        self.ack_log.record(seq, **fields)
        if event.get("wait"):
            coordination.release_keeper(event["wait"]["dir"])
        del self.events[seq]
        self.links.pop(seq, None)
        self.attempts.pop(seq, None)
        self._count_delivered(op, event.get("body") or {})

    def _count_delivered(self, op: str, body: dict) -> None:
        self.tally.count(self.tally.delivered, op)
        if op == "logs":
            self.tally.log_entries += len(body.get("logs") or [])

    def _fail(
        self, seq: int, event: dict, status: int | None, reason: str, quiet: bool = False
    ) -> None:
        """Refused for good.  quiet: a consequence of another refusal, already explained."""
        op, ref = event["op"], event.get("ref")
        if op in STARTS and ref:
            self._known(ref, FAILED)
        if self.ack_log is not None:
            self.ack_log.record(seq, ok=False, status=status, error=reason)
        self.events.pop(seq, None)
        self.links.pop(seq, None)
        self.attempts.pop(seq, None)
        self.tally.count(self.tally.failed, op)
        if not quiet and len(self.tally.reasons) < 10:
            self.tally.reasons.append(f"{op} {describe(event)}: {reason}")
        log.warning("%s %s refused: %s", op, describe(event), reason)

    def _retry(
        self, seq: int, reason: str, after: float | None = None, sent: float | None = None
    ) -> None:
        self.tally.retries += 1
        attempts = self.attempts[seq] = self.attempts.get(seq, 0) + 1
        after = self.pacing.failed(sent, after)  # one outage, one backoff step
        log.debug("retrying seq %s in %.2fs: %s", seq, after, reason)
        self.ready.appendleft(seq)
        if self.max_attempts is not None and attempts >= self.max_attempts:
            # The service keeps failing: stop, and leave the rest for the next upload.
            if self.pacing.never_reached():
                self._stop_unreachable()
            else:
                self._stop(f"still failing after {attempts} attempts: {reason}", "attempts")

    # -- an unreachable API (pacing.py) -----------------------------------------
    def _arm_unreachable(self) -> None:
        """Nothing more will be journaled (the run ended, or `upload`): from now on an
        unreachable API ends delivery.  If it already is, stop now; if attempts failed to
        connect, the next one goes at once rather than after the pause."""
        self.pacing.arm()
        if self.in_flight:
            return
        if self.pacing.unreachable():
            self._stop_unreachable()
        elif self.pacing.connect_error is not None:
            self.pacing.resume_now()

    def _stop_unreachable(self) -> None:
        self._stop(f"cannot reach the API: {self.pacing.connect_error}", "unreachable")

    def _stop(self, reason: str, kind: str) -> None:
        """kind: credentials, tls, proxy, attempts or unreachable (report["stop_kind"])."""
        if not self.stop_reason:
            self.stop_reason = reason
            self.stop_kind = kind
            log.error("delivery stopped: %s", reason)

    # -- closing runs the writer never closed (closing.py) ----------------------
    def journal_ended(self) -> bool:
        """Did the writer end the run?  Its "end" may lie beyond what was read so far: it
        is the journal's last record (store.ends_with_end)."""
        return self.run.ended or journal.ends_with_end(self.reader.path)

    def close_interrupted(self, why: str) -> int:
        """Journal a failed finish for every test and hook run that was started but never
        finished, a build finish if the run did not write one, and "end".  What is past
        the window is read ahead (and let go: delivery reads it again, with what is
        appended here).  Returns how many calls were added."""
        reader, state = self.reader.fork(), self.run.copy()
        while True:
            for record in reader.read_new(journal.READ_LIMIT):
                state.note(record)
            if reader.at_end:
                break
        if state.ended:
            return 0
        records = closing_records(state, reader.interrupted_steps, why)
        # (after the last record read, step records included: only readers see those)
        writer = journal.Appender(self.directory, max(state.max_seq, reader.last_seq))
        for record in records:
            writer.append(record)
        writer.close()
        self.reader.at_end = False  # what was appended is still to be read
        return len(records) - 1

    # -- figures --------------------------------------------------------------
    def _api_url(self) -> str | None:
        """Where this delivery sends (else where the run meant to): the build link's host."""
        t = self.transport
        if t is not None:
            return f"{t.scheme}://{t.host_header}{t.prefix}"
        return self.meta.get("api_url")

    def report(self) -> dict:
        build = self.ids.get("build")
        pending = len(self.events) + self._unread_pending()
        return {
            "build_hashed_id": build if isinstance(build, str) else None,
            "build_url": build_url(build, self._api_url()) if isinstance(build, str) else None,
            "delivered": dict(self.tally.delivered),
            "failed": dict(self.tally.failed),
            "log_entries": self.tally.log_entries,
            "retries": self.tally.retries,
            "pending": pending,
            "reasons": list(self.tally.reasons),
            "stopped": self.stop_reason,
            "stop_kind": self.stop_kind,
            "answered": self.pacing.answered,
            "ended": self.journal_ended(),
            "waiting": self.only_waiting(for_outer=True),
        }

    def _unread_pending(self) -> int:
        """Calls past the window (delivery stopped before reading them) not acknowledged
        before: counted from the raw records, without keeping them."""
        if self.caught_up():
            return 0
        count = 0
        for record in journal.iter_records(self.reader.path, self.reader.raw_fork()):
            seq = record.get("seq")
            if record.get("op") in SENDABLE and isinstance(seq, int):
                count += self.acks.status(seq) == ack_index.UNKNOWN
        return count


def retry_after(response: Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), 300.0)
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        moment = parsedate_to_datetime(value)
        return min(max(moment.timestamp() - time.time(), 0.0), 300.0)
    except (TypeError, ValueError, IndexError):
        return None
