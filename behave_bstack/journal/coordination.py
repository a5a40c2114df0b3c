"""Several behave processes on one machine, one build, finished once after the last.

Processes that report with the same project, build name and an explicit build run
identifier (BROWSERSTACK_BUILD_RUN_IDENTIFIER), or the workers of one behavex run, land in
one TRA build (the server merges them).  To finish it once, after the last test, each
process registers in a directory shared by the machine: a file it holds an exclusive lock on
for as long as it runs.  A file whose lock can be taken belongs to a process that died.

Leaving, a process removes its file.  If others still run, it leaves the build to them.  If
it is the last, it claims the keeper role (an exclusive file); its uploader finishes the
build once nobody has been running for GRACE seconds (processes "started together" do not
start at the same instant: one may end before another registers) and, under behavex, the
behavex main process has exited.  A process that ends while a keeper waits leaves the build
to the keeper.  The keeper releases its claim when it has finished the build, so a straggler
that comes later still finishes it again (the API allows several finishes; the last counts).

CI shards on different machines are not coordinated: each finishes the build, as the API
allows.  Registering and leaving hold the directory's lock, so two processes leaving
together cannot both think they are last.

The locks are portable.lock(): flock() on Linux and macOS, msvcrt.locking() on Windows.
Where the platform has neither, Participation() raises portable.LocksUnavailable and the
session reports without coordination (each process finishes the build; one line says so).
Files are closed before they are deleted: Windows refuses to delete an open file.
"""

from __future__ import annotations

import errno
import os
import random
import time
from pathlib import Path

from ..base import portable, private_dirs

FINISH, SKIP, KEEP = "finish", "skip", "keep"
GRACE = 2.0  # seconds without any process of the build run before the keeper finishes it


# hashlib and tempfile are imported where used: most runs never share a build, and the
# two cost a few ms of every run's start.


def default_root() -> Path:
    """Where builds' directories are (private_dirs.coordination_base: per user, verified)."""
    base, names = private_dirs.coordination_base()
    return base.joinpath(*names)


def build_key(project: str, build_name: str, run_identifier: str) -> str:
    import hashlib

    raw = "\x00".join((project, build_name, run_identifier)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()[:24]


pid_alive = portable.pid_alive  # never os.kill(pid, 0) on Windows: that kills the process

_FLAGS = os.O_RDWR | os.O_CREAT | portable.O_BINARY


class _DirectoryLock:
    def __init__(self, directory: Path) -> None:
        self._fd = os.open(directory / "lock", _FLAGS, 0o600)

    def __enter__(self):
        try:
            portable.lock(self._fd)
        except BaseException:
            os.close(self._fd)
            raise
        return self

    def __exit__(self, *exc) -> None:
        portable.release_and_close(self._fd)


def live_participants(directory: Path, clear_dead: bool = True) -> int:
    """How many registered processes still hold their lock."""
    alive = 0
    for path in directory.glob("*.p"):
        try:
            fd = os.open(path, os.O_RDWR | portable.O_BINARY)
        except FileNotFoundError:
            continue
        except PermissionError:
            alive += 1  # Windows: a file being deleted; or held in a way we cannot open
            continue
        try:
            held = not portable.lock(fd, blocking=False)
        finally:
            portable.release_and_close(fd)  # (our lock, if we took it)
        if held:
            alive += 1
        elif clear_dead:
            portable.unlink_closed(path)
    return alive


class Participation:
    def __init__(self, key: str, root: Path | None = None, outer_pid: int | None = None) -> None:
        # Created 0700 and verified ours (private_dirs.Refused otherwise: the caller goes
        # on without coordination).
        self.directory = private_dirs.coordination_dir(key, root)
        self.outer_pid = outer_pid  # behavex's main process, when there is one
        self.path = self.directory / f"{os.getpid()}-{random.randrange(16**6):06x}.p"
        if not portable.locks_available():
            raise portable.LocksUnavailable(errno.ENOLCK, "no cross-process file locks")
        with _DirectoryLock(self.directory):
            self._fd = os.open(self.path, _FLAGS, 0o600)
            portable.lock(self._fd)
        self.left = False

    def leave(self) -> str:
        """SKIP: someone else finishes the build.  KEEP: we are the keeper; finish it
        when wait_satisfied() says so."""
        if self.left:
            return SKIP
        self.left = True
        with _DirectoryLock(self.directory):
            portable.release_and_close(self._fd)  # first: Windows cannot delete an open file
            portable.unlink_closed(self.path)
            (self.directory / "left").touch()
            if live_participants(self.directory):
                return SKIP
            try:
                os.close(os.open(self.directory / "keeper", _FLAGS | os.O_EXCL, 0o600))
            except FileExistsError:
                return SKIP
            return KEEP


def wait_satisfied(directory: str, outer_pid: int | None, grace: float = GRACE) -> bool:
    """For a keeper: may the build be finished now?"""
    if outer_pid and pid_alive(outer_pid):
        return False
    path = Path(directory)
    if not path.is_dir() or private_dirs.untrusted(path, 3):
        return True  # gone, or no longer ours (replaced since): nobody to wait for
    with _DirectoryLock(path):
        if live_participants(path):
            return False
        try:
            quiet = time.time() - (path / "left").stat().st_mtime
        except FileNotFoundError:
            quiet = grace
        return quiet >= grace


def release_keeper(directory: str) -> None:
    """The keeper finished the build: a later straggler may finish it again."""
    if not private_dirs.untrusted(directory, 3):
        (Path(directory) / "keeper").unlink(missing_ok=True)


def behavex_parent(userdata) -> int | None:
    """behavex passes -D worker_id=N to the behave it runs in each worker process; the
    worker's parent is the behavex main process."""
    if userdata is None or userdata.get("worker_id") in (None, ""):
        return None
    return os.getppid()


def process_start_ticks(pid: int) -> str:
    """A process's start time, so that a recycled pid is a different run (portable.py)."""
    return portable.process_start(pid)
