"""portable.py: each platform's branch, the ones that cannot run here through their seam
with the platform's API faked (issue #20)."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
import simplatform

from behave_bstack.base import portable
from behave_bstack.journal import coordination
from behave_bstack.journal import store as journal

# The tests' own tool (the stand-in msvcrt is built on it), also on the simulated platform.
fcntl = simplatform.REAL_FCNTL or __import__("fcntl")


@pytest.fixture
def msvcrt_api(monkeypatch: pytest.MonkeyPatch):
    """portable's Windows lock branch, with msvcrt's locking() stood in for."""
    stand_in = simplatform._fake_msvcrt(fcntl)
    calls = []
    locking = stand_in.locking

    def recording(fd, mode, nbytes):
        calls.append((mode, nbytes, os.lseek(fd, 0, os.SEEK_CUR)))
        return locking(fd, mode, nbytes)

    stand_in.locking = recording
    monkeypatch.setattr(portable, "_lock_api", lambda: ("msvcrt", stand_in))
    stand_in.calls = calls
    return stand_in


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


# -- locks -----------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["fcntl", "msvcrt"])
def test_lock_excludes_another_handle_until_unlocked(tmp_path, request, api):
    if api == "msvcrt":
        request.getfixturevalue("msvcrt_api")
    elif portable._lock_api() is None or portable._lock_api()[0] != "fcntl":
        pytest.skip("fcntl hidden (simulated platform)")
    first, second = _open(tmp_path / "l"), _open(tmp_path / "l")
    try:
        assert portable.lock(first, blocking=False)
        assert not portable.lock(second, blocking=False)
        portable.unlock(first)
        assert portable.lock(second, blocking=False)
    finally:
        os.close(first)
        os.close(second)


def test_msvcrt_lock_is_on_the_first_byte_whatever_the_position(tmp_path, msvcrt_api):
    fd = _open(tmp_path / "l")
    try:
        os.write(fd, b"hello")  # the position is now 5
        assert portable.lock(fd, blocking=False)
        portable.unlock(fd)
    finally:
        os.close(fd)
    assert msvcrt_api.calls == [(msvcrt_api.LK_NBLCK, 1, 0), (msvcrt_api.LK_UNLCK, 1, 0)]


def test_msvcrt_blocking_lock_waits_for_the_holder_not_ten_seconds(tmp_path, msvcrt_api):
    """msvcrt's own blocking mode gives up after 10 tries a second apart; ours polls."""
    holder, waiter = _open(tmp_path / "l"), _open(tmp_path / "l")
    try:
        assert portable.lock(holder)
        threading.Timer(0.3, portable.unlock, (holder,)).start()
        began = time.monotonic()
        assert portable.lock(waiter)
        assert 0.25 <= time.monotonic() - began < 3
        assert msvcrt_api.LK_LOCK not in {mode for mode, _, _ in msvcrt_api.calls}
    finally:
        os.close(holder)
        os.close(waiter)


def test_msvcrt_errors_other_than_contention_are_raised(monkeypatch, tmp_path):
    class Broken:
        LK_NBLCK, LK_UNLCK = 2, 0

        @staticmethod
        def locking(fd, mode, nbytes):
            raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(portable, "_lock_api", lambda: ("msvcrt", Broken))
    fd = _open(tmp_path / "l")
    try:
        with pytest.raises(OSError) as caught:
            portable.lock(fd, blocking=False)
        assert caught.value.errno == errno.EBADF
    finally:
        os.close(fd)


def test_no_lock_api_raises_locks_unavailable(monkeypatch, tmp_path):
    monkeypatch.setattr(portable, "_lock_api", lambda: None)
    assert not portable.locks_available()
    fd = _open(tmp_path / "l")
    try:
        with pytest.raises(portable.LocksUnavailable):
            portable.lock(fd)
        portable.unlock(fd)  # nothing to undo: no error
    finally:
        os.close(fd)
    with pytest.raises(portable.LocksUnavailable):
        coordination.Participation("k", root=tmp_path)


def test_coordination_with_the_windows_lock(msvcrt_api, tmp_path):
    """Two participants of one build run: the first to leave skips, the last keeps."""
    first = coordination.Participation("k", root=tmp_path)
    second = coordination.Participation("k", root=tmp_path)
    assert coordination.live_participants(first.directory) == 2
    assert first.leave() == coordination.SKIP
    assert second.leave() == coordination.KEEP
    assert not list(first.directory.glob("*.p"))  # closed before deleted
    modes = [mode for mode, _, _ in msvcrt_api.calls]
    assert msvcrt_api.LK_NBLCK in modes
    # Every lock released before its file is closed (Windows frees a closed handle's
    # locks only eventually).
    assert modes.count(msvcrt_api.LK_UNLCK) >= modes.count(msvcrt_api.LK_NBLCK)


def test_a_dead_participants_file_is_cleared(tmp_path, msvcrt_api):
    directory = tmp_path / "k"
    directory.mkdir()
    (directory / "123-dead.p").write_bytes(b"")  # nobody holds its lock
    assert coordination.live_participants(directory) == 0
    assert not (directory / "123-dead.p").exists()


def test_journal_lock_with_the_windows_lock(msvcrt_api, tmp_path):
    held = journal.try_lock(tmp_path)
    assert held is not None
    assert journal.try_lock(tmp_path) is None
    held.close()
    assert msvcrt_api.calls[-1][0] == msvcrt_api.LK_UNLCK  # released, then closed
    again = journal.try_lock(tmp_path)
    assert again is not None
    again.close()


def test_journal_pid_lock_where_there_are_no_locks(monkeypatch, tmp_path):
    monkeypatch.setattr(portable, "_lock_api", lambda: None)
    held = journal.try_lock(tmp_path)
    assert isinstance(held, journal.PidLock)
    assert journal.try_lock(tmp_path) is None  # we are alive
    held.close()
    assert not held.path.exists()
    # A killed owner's file (a pid that is not running) is taken over ...
    held.path.write_text(f"{_dead_pid()} 1", encoding="ascii")
    taken = journal.try_lock(tmp_path)
    assert taken is not None
    taken.close()
    # ... so is a recycled pid's: alive, but started at another time ...
    held.path.write_text(f"{os.getpid()} long-ago", encoding="ascii")
    taken = journal.try_lock(tmp_path)
    assert taken is not None
    taken.close()
    # ... but not a file whose owner is still writing its pid.
    held.path.write_text("", encoding="ascii")
    assert journal.try_lock(tmp_path) is None


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- processes -------------------------------------------------------------------------


class FakeKernel32:
    """OpenProcess / WaitForSingleObject / GetProcessTimes / CloseHandle of a fake system
    where `processes` maps pid -> (running, creation FILETIME as an int)."""

    def __init__(self, processes: dict[int, tuple[bool, int]], denied=()) -> None:
        self.processes, self.denied = processes, set(denied)
        self.error = 0
        self.open_handles: set[int] = set()

    def OpenProcess(self, access, inherit, pid):  # noqa: N802 - the API's name
        if pid in self.denied:
            self.error = 5  # ERROR_ACCESS_DENIED
            return 0
        if pid not in self.processes:
            self.error = 87  # ERROR_INVALID_PARAMETER: no such process
            return 0
        handle = 1000 + pid
        self.open_handles.add(handle)
        return handle

    def WaitForSingleObject(self, handle, timeout):  # noqa: N802
        assert timeout == 0
        running, _ = self.processes[handle - 1000]
        return 0x102 if running else 0  # WAIT_TIMEOUT / WAIT_OBJECT_0 (exited)

    def GetProcessTimes(self, handle, created, exited, kernel, user):  # noqa: N802
        _, when = self.processes[handle - 1000]
        created._obj.dwLowDateTime = when & 0xFFFFFFFF
        created._obj.dwHighDateTime = when >> 32
        return 1

    def CloseHandle(self, handle):  # noqa: N802
        self.open_handles.remove(handle)
        return 1


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch):
    kernel = FakeKernel32({100: (True, 133_000_000_000_000_001), 200: (False, 5)}, denied={4})
    monkeypatch.setattr(portable, "WINDOWS", True)
    monkeypatch.setattr(portable, "_kernel32", lambda: (kernel, lambda: kernel.error))

    def no_kill(*args):
        raise AssertionError("os.kill on Windows terminates the process")

    monkeypatch.setattr(os, "kill", no_kill)
    return kernel


def test_windows_pid_alive_asks_the_process_api_never_kill(windows):
    assert portable.pid_alive(100)  # running
    assert not portable.pid_alive(200)  # exited, its handle still open somewhere
    assert not portable.pid_alive(300)  # no such process
    assert portable.pid_alive(4)  # exists, not ours to open (a system process)
    assert not portable.pid_alive(0) and not portable.pid_alive(None)
    assert not windows.open_handles  # every handle closed
    assert coordination.pid_alive(100)  # coordination and the uploader use this one


def test_windows_process_start_is_the_creation_time(windows, monkeypatch):
    monkeypatch.setattr(portable, "_ps_start", lambda pid: pytest.fail("no ps on Windows"))
    assert portable.process_start(100) == "133000000000000001"
    assert portable.process_start(300) == "0"
    assert not windows.open_handles


def test_windows_api_missing_means_unknown_not_an_error(monkeypatch):
    monkeypatch.setattr(portable, "WINDOWS", True)

    def no_ctypes():
        raise OSError("no kernel32")

    monkeypatch.setattr(portable, "_kernel32", no_ctypes)
    assert portable.pid_alive(1) is False
    assert portable._windows_process_start(1) == "0"


def test_posix_pid_alive():
    assert portable.pid_alive(os.getpid())
    assert not portable.pid_alive(_dead_pid())
    assert not portable.pid_alive(-5) and not portable.pid_alive("x")


def test_process_start_without_proc_asks_ps(monkeypatch):
    """macOS (and Linux with /proc unreadable): `ps -o lstart=`; stable for one process,
    different for a process started later with the same pid."""
    first = portable._ps_start(os.getpid())
    assert first != "0" and first == portable._ps_start(os.getpid())
    assert first.isalnum()
    assert portable._ps_start(_dead_pid()) == "0"


def test_uploader_process_options(monkeypatch):
    assert portable.uploader_process_options() == {"start_new_session": True}
    monkeypatch.setattr(portable, "WINDOWS", True)
    flags = portable.uploader_process_options()["creationflags"]
    assert flags & 0x200  # CREATE_NEW_PROCESS_GROUP: the console's Ctrl-C is not its
    assert flags & 0x08000000  # CREATE_NO_WINDOW


# -- files -----------------------------------------------------------------------------


def test_pread_pwrite_without_the_os_calls(monkeypatch, tmp_path):
    monkeypatch.delattr(os, "pread", raising=False)
    monkeypatch.delattr(os, "pwrite", raising=False)
    fd = _open(tmp_path / "f")
    try:
        assert portable.pwrite(fd, b"0123456789", 0) == 10
        assert portable.pwrite(fd, b"ab", 3) == 2
        assert portable.pread(fd, 4, 2) == b"2ab5"
        assert portable.pread(fd, 100, 8) == b"89"
    finally:
        os.close(fd)


def test_replace_retries_while_windows_refuses(monkeypatch, tmp_path):
    real, attempts = os.replace, []

    def busy_twice(src, dst):
        attempts.append(dst)
        if len(attempts) < 3:
            raise PermissionError(errno.EACCES, "in use by another process")
        real(src, dst)

    monkeypatch.setattr(os, "replace", busy_twice)
    (tmp_path / "a").write_text("new")
    monkeypatch.setattr(portable, "WINDOWS", True)
    portable.replace(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").read_text() == "new" and len(attempts) == 3
    # Unix: a PermissionError is the directory's mode, retrying does not help.
    monkeypatch.setattr(portable, "WINDOWS", False)
    attempts.clear()
    (tmp_path / "a").write_text("new")
    with pytest.raises(PermissionError):
        portable.replace(tmp_path / "a", tmp_path / "b")
    assert len(attempts) == 1


def test_unlink_of_a_file_open_elsewhere_on_windows(monkeypatch, tmp_path):
    def in_use(path):
        raise PermissionError(errno.EACCES, "used by another process")

    (tmp_path / "f").write_text("")
    monkeypatch.setattr(os, "unlink", in_use)
    monkeypatch.setattr(portable, "WINDOWS", True)
    assert portable.unlink_closed(tmp_path / "f") is False
    monkeypatch.setattr(portable, "WINDOWS", False)
    with pytest.raises(PermissionError):
        portable.unlink_closed(tmp_path / "f")


def test_journal_without_pwrite_or_mapping(monkeypatch, tmp_path):
    """Windows' journal: no MAP_SHARED and no os.pwrite: one seek-and-write per record."""
    monkeypatch.setattr(journal, "_pwrite", portable.pwrite)
    monkeypatch.delattr(os, "pwrite", raising=False)
    monkeypatch.delattr(os, "pread", raising=False)
    writer = journal.JournalWriter(tmp_path / "run")
    writer._mapping = False
    for n in range(50):
        writer.append("op", {"n": n})
    writer.close()
    records = journal.read_all(tmp_path / "run" / journal.EVENTS)
    assert [r["body"]["n"] for r in records] == list(range(50))
    appender = journal.Appender(tmp_path / "run", 50)  # open_for_append reads the last byte
    appender.append({"op": "late"})
    appender.close()
    assert journal.read_all(tmp_path / "run" / journal.EVENTS)[-1]["op"] == "late"


def test_every_os_open_is_binary(monkeypatch, tmp_path):
    """On Windows os.open() is text mode unless told: "\\n" would become "\\r\\n"."""
    monkeypatch.setattr(portable, "O_BINARY", 0x8000)
    seen = []
    real_open = os.open

    def recording(path, flags, *args):
        seen.append((Path(path).name, flags))
        return real_open(path, flags & ~0x8000, *args)

    monkeypatch.setattr(os, "open", recording)
    monkeypatch.setattr(coordination, "_FLAGS", os.O_RDWR | os.O_CREAT | 0x8000)
    monkeypatch.setattr(portable, "_lock_api", lambda: ("fcntl", fcntl))
    writer = journal.JournalWriter(tmp_path / "run")
    writer.append("op")
    writer.close()
    journal.write_report(tmp_path / "run", {})
    journal.try_lock(tmp_path / "run").close()
    part = coordination.Participation("k", root=tmp_path / "c")
    part.leave()
    # (Path.touch() of the empty "left" marker is the one open without it: it writes nothing.)
    assert seen and all(flags & 0x8000 for name, flags in seen if name != "left"), seen


def test_ctypes_filetime_is_what_the_fake_fills():
    """The fake kernel32 writes through ctypes.byref(FILETIME) as the real one does."""
    from ctypes import wintypes

    stamp = wintypes.FILETIME()
    FakeKernel32({1: (True, (7 << 32) | 9)}).GetProcessTimes(1001, ctypes.byref(stamp), 0, 0, 0)
    assert (stamp.dwHighDateTime, stamp.dwLowDateTime) == (7, 9)


def test_kernel32_signatures_are_declared(monkeypatch):
    """_kernel32() itself, with ctypes.WinDLL faked: every function it declares exists and
    takes the declared types (a 64-bit HANDLE must not be truncated to an int)."""
    from ctypes import wintypes

    class Function:
        pass

    loaded = {}

    def win_dll(name, use_last_error=False):
        assert name == "kernel32" and use_last_error
        library = types.SimpleNamespace(
            OpenProcess=Function(),
            WaitForSingleObject=Function(),
            GetProcessTimes=Function(),
            CloseHandle=Function(),
        )
        loaded["kernel32"] = library
        return library

    monkeypatch.setattr(ctypes, "WinDLL", win_dll, raising=False)
    monkeypatch.setattr(ctypes, "get_last_error", lambda: 0, raising=False)
    k32, last_error = portable._kernel32()
    assert k32.OpenProcess.restype is wintypes.HANDLE
    assert k32.WaitForSingleObject.argtypes[0] is wintypes.HANDLE
    assert k32.GetProcessTimes.argtypes[1]._type_ is wintypes.FILETIME
    assert k32.CloseHandle.argtypes == (wintypes.HANDLE,)
    assert last_error() == 0


def test_removing_a_journal_where_open_files_cannot_be_deleted(monkeypatch, tmp_path):
    """housekeeping.remove() on Windows' terms: the lock file it holds open cannot be
    deleted until it let go of it; the whole journal still goes."""
    from behave_bstack.journal import housekeeping

    run_dir = tmp_path / "20260101-000000-1-abcd"
    writer = journal.JournalWriter(run_dir)
    writer.append("op")
    writer.attachment_path("00001-shot.png").write_bytes(b"\x89PNG")
    writer.close()
    journal.write_report(run_dir, {"ended": True, "pending": 0})

    held: set[int] = set()
    real_init, real_close = portable.HeldLock.__init__, portable.HeldLock.close

    def init(self, fd):
        held.add(fd)
        real_init(self, fd)

    def close(self):
        held.discard(self.fd)
        real_close(self)

    real_unlink, refused = os.unlink, []

    def unlink(path, *args, **kwargs):
        if os.path.basename(os.fsdecode(path)) == journal.LOCK and held:
            refused.append(path)
            raise PermissionError(errno.EACCES, "being used by another process", path)
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(portable.HeldLock, "__init__", init)
    monkeypatch.setattr(portable.HeldLock, "close", close)
    monkeypatch.setattr(os, "unlink", unlink)
    assert housekeeping.remove(run_dir)
    assert not run_dir.exists()
    assert refused == []  # it never tried while holding it

    # A journal that someone is delivering stays whole.
    writer = journal.JournalWriter(run_dir)
    writer.close()
    other = journal.try_lock(run_dir)
    try:
        assert not housekeeping.remove(run_dir)
        assert (run_dir / journal.EVENTS).exists()
    finally:
        other.close()


def test_the_uploader_reads_stop_and_the_pipes_end():
    """The uploader's control pipe: "stop" stops delivery; the end means behave is gone."""
    import io

    from behave_bstack.delivery.uploader import watch_control

    stopping, gone = threading.Event(), threading.Event()
    read, write = os.pipe()
    with os.fdopen(read, "r") as control, os.fdopen(write, "w") as behave_side:
        watch_control(control, stopping, gone)
        behave_side.write("noise\n")
        behave_side.flush()
        assert not stopping.wait(0.2) and not gone.is_set()
        behave_side.write("stop\n")
        behave_side.flush()
        assert stopping.wait(5) and not gone.is_set()
        behave_side.close()  # behave ends (or is killed): the pipe's end
        assert gone.wait(5)
    stopping, gone = threading.Event(), threading.Event()
    watch_control(io.StringIO(""), stopping, gone)
    assert gone.wait(5) and not stopping.is_set()
