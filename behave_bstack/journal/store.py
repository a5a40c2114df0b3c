"""The run journal: an append-only outbox on disk, one directory per behave process.

    <journal_dir>/<run_id>/events.jsonl   what must be sent, in order (written by behave)
    <journal_dir>/<run_id>/acks.jsonl     what the server acknowledged or refused (uploader)
    <journal_dir>/<run_id>/report.json    the last delivery's figures (uploader)
    <journal_dir>/<run_id>/attachments/   bytes of attachments

An event is one API call: {"seq", "op", "ref", "body"}.  `ref` names the local id the call
creates or targets ("build", "t12", "h3"); inside a body, {"$ref": "t12"} stands for the
server id that the start of t12 returns.  Ids are only known once the server answered, so
the journal never needs rewriting: the acks supply them.

Every file is created readable by its owner only.  Each event is written with one
os.write() call, so a killed process leaves at most one partial last line, which readers
skip until it is complete.
"""

from __future__ import annotations

import copy
import json
import mmap
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

from ..base import portable
from ..base.private_dirs import NOFOLLOW
from .drafts import Expander

EVENTS = "events.jsonl"
ACKS = "acks.jsonl"
REPORT = "report.json"
ATTACHMENTS = "attachments"
LOCK = "upload.lock"
WINDOW = 1 << 20  # bytes of the events file the writer maps at a time
READ_CHUNK = 1 << 16
READ_LIMIT = 1 << 18  # bytes read at a time where a file is read in pieces


def new_run_id() -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{stamp}-{os.getpid()}-{random.randrange(16**4):04x}"


# One encoder, without the circular-reference check: drafts are plain trees, and this runs
# twice per scenario on behave's thread (a quarter faster than json.dumps).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def _make_encode():
    """_ENCODER.encode without the Python layer that builds its C encoder again for every
    call (a fifth of the time on small records); the plain method where there is no C."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has it
        return _ENCODER.encode
    c_encode = make(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    return lambda record: "".join(c_encode(record, 0))


_encode = _make_encode()


def _dumps(record: dict) -> bytes:
    return (_encode(record) + "\n").encode("utf-8", "surrogatepass")


def make_private_dir(path: Path) -> None:
    """Every directory this creates is owner-only (mkdir(parents=True) would give the
    parents the default mode, letting others list run ids)."""
    missing = []
    path = Path(path)
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_APPEND | os.O_CREAT) -> int:
    """Owner-only; a symbolic link in the file's place is refused (ELOOP) where the
    platform can tell (private_dirs.NOFOLLOW); binary on Windows (where os.open() is text
    mode by default)."""
    return os.open(path, flags | NOFOLLOW | portable.O_BINARY, 0o600)


def open_for_append(path: Path) -> int:
    """Append to a JSON-lines file; if a crash left its last line torn, end that line
    first, so that the next record is not glued to it and lost with it.  The unused,
    zero-filled end of a killed writer's window (JournalWriter) is cut off first."""
    fd = open_private(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    size = os.fstat(fd).st_size
    end = _data_end(fd, size)
    if end < size:
        os.ftruncate(fd, end)
    if end and portable.pread(fd, 1, end - 1) != b"\n":
        os.write(fd, b"\n")
    return fd


def _data_end(fd: int, size: int) -> int:
    """Where a file's records end: before its trailing zero bytes (a record never holds
    one: JSON escapes them)."""
    end = size
    while end > 0:
        start = max(0, end - WINDOW)
        chunk = portable.pread(fd, end - start, start)
        kept = len(chunk.rstrip(b"\0"))
        if kept:
            return start + kept
        end = start
    return 0


def private_file(path: Path) -> Path:
    """Create an empty owner-only file (for handlers that open by name, e.g. logging)."""
    os.close(open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT))
    return path


_pwrite = getattr(os, "pwrite", None) or portable.pwrite  # Windows has no os.pwrite


class JournalWriter:
    """Appends events; used by the behave process (one writer per journal).

    Records are copied into a memory-mapped window of the file rather than written with
    one system call each: a store into a shared mapping is in the page cache at once,
    exactly like write()'s data, so a killed (even SIGKILLed) behave loses nothing that
    write() would have kept, while the test thread saves a system call per event (measured
    in this VM: the journal's writes were a third of the reporter's cost per scenario).
    The file is grown a window at a time; its unused end reads as zero bytes, where
    readers stop (LineReader), and close() cuts it off.  Where mapping is not possible,
    each record is one os.write(), as before; and so on Windows, whose mmap module has no
    MAP_SHARED (the mapping path is unverified there: this project has no Windows machine)."""

    def __init__(self, directory: Path, name: str = EVENTS) -> None:
        """`name`: another file than events.jsonl for a journal written whole before it
        is renamed into place (`behave-bstack import`), so no reader sees it half done."""
        self.directory = Path(directory)
        make_private_dir(self.directory)
        self._fd = open_private(self.directory / name, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        self._seq = 0
        self._pos = 0  # bytes of records in the file
        self._map = None  # the current window, or None (mapping failed: plain writes)
        self._base = 0  # the window's offset in the file
        self._mapping = hasattr(mmap, "MAP_SHARED")

    def append(self, op: str, body: dict | None = None, ref: str | None = None, **extra) -> int:
        self._seq += 1
        record: dict = {"seq": self._seq, "op": op, **extra}
        if ref is not None:
            record["ref"] = ref
        if body is not None:
            record["body"] = body
        self._write(_dumps(record))
        return self._seq

    def append_formatted(self, make_line, *values) -> int:
        """Append a record that `make_line(seq, *values)` formats itself (drafts.py)."""
        self._seq += 1
        self._write(make_line(self._seq, *values))
        return self._seq

    def append_template(self, template: str, *values) -> None:
        """Append `template % (seq, *values)`: a record whose values need no JSON escaping
        (ints and our own ids; drafts.STEP_TEMPLATE).  One call less than
        append_formatted, for what is written for every step."""
        self._seq += 1
        self._write((template % (self._seq, *values)).encode("ascii"))

    def _write(self, data: bytes) -> None:
        size = len(data)
        window = self._map
        at = self._pos - self._base
        if window is None or at + size > WINDOW:
            window = self._next_window(size)
            at = self._pos - self._base
        if window is None:
            _pwrite(self._fd, data, self._pos)
        else:
            window[at : at + size - 1] = data[:-1]
            window[at + size - 1] = 10  # the newline last: a reader never sees half a record
        self._pos += size

    def _next_window(self, size: int):
        """Map the window that holds the next record; None: write this one directly."""
        if self._map is not None:
            self._map.close()
            self._map = None
        if not self._mapping or size > WINDOW // 4:
            return None  # a big record (a feature file's lines): one write
        self._base = self._pos - self._pos % mmap.ALLOCATIONGRANULARITY
        try:
            if os.fstat(self._fd).st_size < self._base + WINDOW:
                os.ftruncate(self._fd, self._base + WINDOW)
            self._map = mmap.mmap(self._fd, WINDOW, offset=self._base)
        except (OSError, ValueError):
            self._mapping = False  # e.g. a file system that cannot map files
            os.ftruncate(self._fd, self._pos)
        return self._map

    def close(self) -> None:
        if self._fd >= 0:
            if self._map is not None:
                self._map.close()
                self._map = None
            os.ftruncate(self._fd, self._pos)
            os.close(self._fd)
            self._fd = -1

    def attachment_path(self, name: str) -> Path:
        folder = self.directory / ATTACHMENTS
        make_private_dir(folder)
        return folder / name


class LineReader:
    """Reads the complete lines a file has gained since the last call; with a limit, at
    most that many bytes of it per call (so that a long journal is read in bounded pieces:
    `at_end` tells whether the last call reached what the file holds)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.last_seq = 0  # of every record read, those only readers need included
        self.at_end = False  # the last call read up to the end of the file's records

    def fork(self) -> LineReader:
        """A reader that goes on from where this one is, independently of it."""
        return copy.copy(self)

    def raw_fork(self) -> LineReader:
        """A plain LineReader (records as journaled) that goes on from where this one is."""
        other = LineReader(self.path)
        other._offset, other._partial, other.last_seq = self._offset, self._partial, self.last_seq
        return other

    def read_new(self, limit: int | None = None) -> list[dict]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk, self.at_end = _read_records(handle, limit)
        except FileNotFoundError:
            self.at_end = True
            return []
        if not chunk:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        records = []
        for line in lines:
            if line.strip():
                # A passed step's record (one per step: most of a journal's lines) is read
                # without the JSON decoder, in half its time; anything else is JSON.
                record = _passed_step(line) if _STEP_MARK in line else None
                if record is None:
                    try:
                        record = json.loads(line.decode("utf-8", "surrogatepass"))
                    except ValueError:
                        continue  # a torn line from a crash: nothing to send from it
                records.append(record)
        if records:
            seq = records[-1].get("seq") if isinstance(records[-1], dict) else None
            if isinstance(seq, int) and seq > self.last_seq:
                self.last_seq = seq
        return records


_STEP_MARK = b',"op":"step","ref":"'


def _passed_step(line: bytes) -> dict | None:
    """The record of drafts.STEP_TEMPLATE, or None for any other line."""
    head, found, rest = line.partition(_STEP_MARK)
    if not found or not head.startswith(b'{"seq":'):
        return None
    ref, found, tail = rest.partition(b'","step":[')
    parts = tail.split(b",")
    if not found or len(parts) != 4 or parts[1] != b'"passed"' or not parts[3].endswith(b"]}"):
        return None
    try:
        return {
            "seq": int(head[7:]),
            "op": "step",
            "ref": ref.decode("ascii"),
            "step": [int(parts[0]), "passed", int(parts[2]), int(parts[3][:-2])],
        }
    except ValueError:
        return None


def _read_records(handle, limit: int | None = None) -> tuple[bytes, bool]:
    """The bytes from here up to the file's end or its first zero byte (the writer's window
    not yet written, JournalWriter, or a record still being copied in), or `limit` bytes if
    that comes first; and whether that end was reached."""
    parts = []
    left = limit
    while left is None or left > 0:
        piece = handle.read(READ_CHUNK if left is None else min(READ_CHUNK, left))
        if not piece:
            return b"".join(parts), True
        cut = piece.find(b"\0")
        if cut >= 0:
            parts.append(piece[:cut])
            return b"".join(parts), True
        parts.append(piece)
        if left is not None:
            left -= len(piece)
    return b"".join(parts), False


def read_all(path: Path) -> list[dict]:
    return LineReader(path).read_new()


def iter_records(path: Path, reader: LineReader | None = None) -> Iterator[dict]:
    """Every record of a file, read in bounded pieces (READ_LIMIT bytes at a time): a long
    journal is never held whole."""
    reader = LineReader(path) if reader is None else reader
    while True:
        yield from reader.read_new(READ_LIMIT)
        if reader.at_end:
            return


class EventReader(LineReader):
    """Reads a run's events as full drafts (see drafts.py for the journal's compact form)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._expander = Expander()

    def fork(self) -> EventReader:
        other = super().fork()
        other._expander = self._expander.copy()
        return other

    def read_new(self, limit: int | None = None) -> list[dict]:
        expand = self._expander.expand
        return [event for event in map(expand, super().read_new(limit)) if event is not None]

    def interrupted_steps(self, ref: str) -> tuple[list[dict], int | None]:
        """meta.steps of a test never finished, from the steps it journaled as finished."""
        return self._expander.interrupted(ref)


def read_events(path: Path) -> list[dict]:
    return EventReader(path).read_new()


def iter_events(path: Path) -> Iterator[dict]:
    """read_events(), in bounded pieces (iter_records)."""
    return iter_records(path, EventReader(path))


def ends_with_end(path: Path) -> bool:
    """Does the file's last record say the run ended?  The writer's "end" is its last
    record (Outbox.close, and Delivery closing an interrupted run): this tells a journal
    that ended from one that did not without reading it all."""
    try:
        fd = os.open(path, os.O_RDONLY | portable.O_BINARY)
    except OSError:
        return False
    try:
        end = _data_end(fd, os.fstat(fd).st_size)  # before a killed writer's zero bytes
        tail = portable.pread(fd, min(end, READ_CHUNK), end - min(end, READ_CHUNK))
    except OSError:
        return False
    finally:
        os.close(fd)
    cut = tail.find(b"\0")
    lines = (tail if cut < 0 else tail[:cut]).rstrip().rsplit(b"\n", 1)
    try:
        record = json.loads(lines[-1].decode("utf-8", "surrogatepass"))
    except ValueError:
        return False
    return isinstance(record, dict) and record.get("op") == "end"


class AckLog:
    """What delivery learnt, one JSON line per event: {"seq", "ok", "id"?, "status"?, "error"?}."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / ACKS
        self._fd = open_for_append(self.path)
        self._pending: list[bytes] = []

    def record(self, seq: int, **fields) -> None:
        """Kept until flush(): delivery writes the acks of one loop turn at once."""
        self._pending.append(_dumps({"seq": seq, **fields}))

    def flush(self) -> None:
        if self._pending:
            data, self._pending = b"".join(self._pending), []
            os.write(self._fd, data)

    def close(self) -> None:
        self.flush()
        os.close(self._fd)


def load_acks(directory: Path) -> dict[int, dict]:
    return {ack["seq"]: ack for ack in read_all(Path(directory) / ACKS) if "seq" in ack}


def run_directories(journal_dir: Path) -> Iterator[Path]:
    root = Path(journal_dir)
    if not root.is_dir():
        return iter(())
    return iter(sorted(p for p in root.iterdir() if (p / EVENTS).is_file()))


def write_report(directory: Path, report: dict) -> None:
    tmp = Path(directory) / (REPORT + ".tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    portable.replace(tmp, Path(directory) / REPORT)  # retried while a reader has it (Windows)


def read_report(directory: Path) -> dict | None:
    try:
        return json.loads((Path(directory) / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class Appender:
    """Adds events to a journal whose writer is gone (closing interrupted runs)."""

    def __init__(self, directory: Path, last_seq: int) -> None:
        self._fd = open_for_append(Path(directory) / EVENTS)
        self._seq = last_seq

    def append(self, record: dict) -> int:
        self._seq += 1
        os.write(self._fd, _dumps({**record, "seq": self._seq}))
        return self._seq

    def close(self) -> None:
        os.close(self._fd)


def try_lock(directory: Path):
    """An exclusive, non-blocking lock on a journal, so that one process delivers it at a
    time.  Returns an object with close() (keep it to hold the lock) or None when someone
    holds it.  Where the platform has no file locks, a lock file naming its owner's pid
    stands in (PidLock)."""
    if not portable.locks_available():
        return PidLock.acquire(Path(directory) / (LOCK + ".pid"))
    fd = open_private(Path(directory) / LOCK, os.O_RDWR | os.O_CREAT)
    try:
        locked = portable.lock(fd, blocking=False)
    except OSError:
        locked = False
    if not locked:
        os.close(fd)
        return None
    return portable.HeldLock(fd)


class PidLock:
    """A lock file created exclusively, holding the owner's pid and start time; one whose
    owner is gone (killed: it could not delete it) is taken over.  Only for platforms with
    neither flock() nor msvcrt.locking(): two processes taking over the same stale file in
    the same instant could both win, which the real locks exclude."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def acquire(cls, path: Path) -> PidLock | None:
        me = f"{os.getpid()} {portable.process_start(os.getpid())}"
        for _ in range(3):
            try:
                fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                try:
                    pid, _, started = path.read_text(encoding="ascii").partition(" ")
                    age = time.time() - path.stat().st_mtime
                except (OSError, ValueError):
                    return None  # being written or deleted right now: someone holds it
                if not pid.isdigit():
                    if age < 5:
                        return None  # its owner has not written its pid yet
                elif portable.pid_alive(int(pid)):
                    if portable.process_start(int(pid)) == started.strip():
                        return None
                portable.unlink_closed(path)  # a dead owner's (or a recycled pid's)
                continue
            with os.fdopen(fd, "wb") as handle:
                handle.write(me.encode("ascii"))
            return cls(path)
        return None

    def close(self) -> None:
        portable.unlink_closed(self.path)
