"""What a scenario or hook printed and logged, collected for TEST_LOG / HOOK_LOG entries.

Three sources, so nothing depends on behave's own capture (which differs between 1.2.6
and 1.3 and loses output in 1.3.3, behave-notes.md §2.2):

* logging: a wrapper around the LogRecord factory sees every record any logger creates,
  whatever handlers behave's log capture installs or removes.  Our own logger
  ("behave_bstack") is skipped, so the reporter never reports itself.
* print with behave's capture off: sys.stdout and sys.stderr are teed while the session
  lives.  What a logging handler writes (logging.basicConfig()'s StreamHandler, rich,
  colorlog, behave's own --logging-level set-up) is not taken from the tee: that record
  was already taken where it was created, and one record is one entry.  While behave
  captures, a handler writing to the captured stream (logging's last-resort handler, a
  StreamHandler made during capture, a console handler printing) puts the record into
  behave's buffer: the lines it wrote there are noted (emitted_lines) and left out when the
  buffer is read.
* print with behave's capture on: behave's buffers, read when the scenario ends
  (scenario.captured in 1.3, runner.stdout_capture/stderr_capture in 1.2.6).  While behave
  captures, the tee does not see the output, so nothing is collected twice.

Collected text is bounded per test (MAX_CHARS_PER_RUN, with a visible marker); long
messages are split into parts of at most MESSAGE_PART characters, never dropped.
"""

from __future__ import annotations

import io
import logging
import sys
import threading

from ..description.mapping import METADATA_TAG
from ..journal import entries
from ..journal.entries import MESSAGE_PART, log_entries  # noqa: F401 - used by the tracker

OWN_LOGGER = "behave_bstack"
MAX_CHARS_PER_RUN = 5_000_000
LEVELS = {"CRITICAL": "ERROR", "FATAL": "ERROR", "WARNING": "WARN"}


class Sink:
    """Log entries of one test or hook run, kept until the run is journaled."""

    __slots__ = ("entries", "chars", "dropped", "partial")

    def __init__(self) -> None:
        self.entries: list[tuple[int, str, str]] = []  # (epoch ms, level, message)
        self.chars = 0
        self.dropped = 0
        self.partial: dict[str, tuple[int, str]] = {}  # level -> (epoch ms, text so far)

    def add_text(self, epoch_ms: int, level: str, text: str) -> None:
        """Printed text arrives in pieces (print writes its arguments and separators one
        by one): keep it until a line ends, so that one print is one entry."""
        started, pending = self.partial.pop(level, (epoch_ms, ""))
        pending += text
        if "\n" not in pending:
            self.partial[level] = (started, pending)
            return
        complete, _, rest = pending.rpartition("\n")
        self.add(started, level, complete)
        if rest:
            self.partial[level] = (epoch_ms, rest)

    def add(self, epoch_ms: int, level: str, message: str) -> None:
        if not message:
            return
        if self.chars + len(message) > MAX_CHARS_PER_RUN:
            self.dropped += len(message)
            return
        self.chars += len(message)
        self.entries.append((epoch_ms, level, message))

    def drain(self) -> list[tuple[int, str, str]]:
        if not (self.entries or self.partial or self.dropped):
            return []  # the usual case, for every test
        for level, (started, text) in self.partial.items():
            self.add(started, level, text)
        self.partial = {}
        entries = self.entries
        if self.dropped:
            note = (
                f"[behave-bstack: {self.dropped} more characters of output were not kept: "
                f"more than {MAX_CHARS_PER_RUN} per run]"
            )
            entries.append((entries[-1][0] if entries else 0, "WARN", note))
        self.entries, self.chars, self.dropped = [], 0, 0
        return entries


class _Tee:
    """Writes through to the real stream and copies the text to the current sink."""

    def __init__(self, stream, on_text, level: str) -> None:
        self._stream = stream
        self._on_text = on_text
        self._level = level
        self._copy_encoding()

    def write(self, text):
        result = self._stream.write(text)
        try:
            self._on_text(self._level, text)
        except Exception:  # noqa: BLE001 - the user's print must never fail because of us
            pass
        return result

    # behave reads sys.stdout.encoding some 16 times per scenario: a plain attribute
    # answers that fastest (through __getattr__, a failed lookup first, it was a tenth of
    # our whole cost).  reconfigure() is the one way it changes.
    def _copy_encoding(self) -> None:
        for name in ("encoding", "errors"):
            try:
                setattr(self, name, getattr(self._stream, name))
            except AttributeError:
                self.__dict__.pop(name, None)

    def reconfigure(self, *args, **kwargs):
        result = self._stream.reconfigure(*args, **kwargs)
        self._copy_encoding()
        return result

    def __getattr__(self, name):
        return getattr(self._stream, name)


class OutputCapture:
    """Installs the record factory wrapper and the stdout/stderr tee; `target()` says
    which sink gets what arrives now (None: nobody is running, drop it)."""

    def __init__(self, target, now_ms) -> None:
        self._target = target
        self._now_ms = now_ms
        self._old_factory = None
        self._old_streams = None
        self._old_handle = None
        self._pending: dict[str, str] = {}
        self._emitting = threading.local()  # .depth > 0: a logging handler is writing
        self.emitted_lines: dict[str, int] = {}  # what handlers wrote into behave's capture

    def install(self) -> None:
        old_factory = self._old_factory = logging.getLogRecordFactory()
        capture = self

        def factory(*args, **kwargs):
            record = old_factory(*args, **kwargs)
            try:
                capture._on_record(record)
            except Exception:  # noqa: BLE001
                pass
            return record

        logging.setLogRecordFactory(factory)
        # Every handler is called through Handler.handle (its emit() under the handler's
        # lock): while one runs, what it prints is the record again, not new output.
        old_handle = self._old_handle = logging.Handler.__dict__["handle"]
        emitting = self._emitting

        def handle(handler, record):
            depth = emitting.depth = getattr(emitting, "depth", 0) + 1
            # behave's capture buffers (StringIO, 1.2.6 and 1.3) in place of the streams
            buffers = [b for b in (sys.stdout, sys.stderr) if type(b) is io.StringIO]
            marks = [(b, b.tell()) for b in buffers] if depth == 1 else None
            try:
                return old_handle(handler, record)
            finally:
                emitting.depth -= 1
                if marks:
                    capture._note_written(marks)

        handle.__wrapped__ = old_handle
        logging.Handler.handle = handle
        self._old_streams = (sys.stdout, sys.stderr)
        sys.stdout = _Tee(sys.stdout, self._on_text, "INFO")
        sys.stderr = _Tee(sys.stderr, self._on_text, "WARN")

    def uninstall(self) -> None:
        if self._old_factory is not None:
            logging.setLogRecordFactory(self._old_factory)
            self._old_factory = None
        if self._old_handle is not None:
            logging.Handler.handle = self._old_handle
            self._old_handle = None
        if self._old_streams is not None:
            # Only undo our own tee: someone may have replaced the streams since.
            if isinstance(sys.stdout, _Tee):
                sys.stdout = self._old_streams[0]
            if isinstance(sys.stderr, _Tee):
                sys.stderr = self._old_streams[1]
            self._old_streams = None

    def _on_record(self, record: logging.LogRecord) -> None:
        if record.name == OWN_LOGGER or record.name.startswith(OWN_LOGGER + "."):
            return
        sink = self._target()
        if sink is None:
            return
        message = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            import traceback

            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        level = LEVELS.get(record.levelname, record.levelname)
        # Our clock, not record.created: the code under test may have frozen time.
        sink.add(self._now_ms(), level, f"{record.name}: {message}")

    def _note_written(self, marks: list) -> None:
        lines = self.emitted_lines
        for buffer, mark in marks:
            try:
                if buffer.tell() == mark:
                    continue
                buffer.seek(mark)
                text = buffer.read()  # and the position is at the end again
            except (OSError, ValueError):
                continue
            for line in text.rstrip("\n").split("\n"):
                lines[line] = lines.get(line, 0) + 1

    def without_emitted(self, text: str) -> str:
        """behave's captured text less the lines logging handlers wrote into it."""
        lines = self.emitted_lines
        if not lines:
            return text
        kept = []
        for line in text.split("\n"):
            count = lines.get(line, 0)
            if count:
                lines[line] = count - 1
            else:
                kept.append(line)
        return "\n".join(kept)

    def _on_text(self, level: str, text: str) -> None:
        if getattr(self._emitting, "depth", 0):
            return  # a logging handler writing a record we already have
        sink = self._target()
        if sink is None or not text:
            return
        sink.add_text(self._now_ms(), level, text)


def behave_captured(scenario, runner) -> list[tuple[str, str, str]]:
    """(part name, level, text) of what behave's own capture holds for a finished scenario."""
    found = []
    captured = getattr(scenario, "captured", None)
    parts = getattr(captured, "captures", None)
    if parts is not None:  # behave 1.3: named parts (scenario, before_scenario, ...)
        for part in parts:
            name = str(getattr(part, "name", "") or "scenario")
            for level, text in (("INFO", part.stdout), ("WARN", part.stderr)):
                if text and text.strip():
                    found.append((name, level, text.rstrip("\n")))
        return found
    # behave 1.2.6: one buffer per scenario, kept until the next scenario sets up its own
    controller = getattr(runner, "capture_controller", runner)
    for level, attr in (("INFO", "stdout_capture"), ("WARN", "stderr_capture")):
        buffer = getattr(controller, attr, None)
        getvalue = getattr(buffer, "getvalue", None)
        text = getvalue() if getvalue else None
        if text and text.strip():
            found.append(("scenario", level, text.rstrip("\n")))
    return found


def metadata_from_tags(tags) -> list[tuple[str, str]]:
    pairs = []
    for tag in tags:
        if tag.startswith(METADATA_TAG) and "=" in tag:
            key, _, value = tag[len(METADATA_TAG) :].partition("=")
            if key:
                pairs.append((key, value.replace("_", " ") if value else ""))
    return pairs


def attachment_entry(outbox, number: int, data: bytes, name, mime_type: str, epoch_ms: int) -> dict:
    """A TEST_SCREENSHOT / TEST_ATTACHMENT log entry; the bytes stay in the journal
    (journal/entries.py, shared with `behave-bstack import`)."""
    return entries.attachment_entry(outbox.writer, number, data, name, mime_type, epoch_ms)
