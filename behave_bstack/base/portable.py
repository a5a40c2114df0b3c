"""What differs between Linux, macOS and Windows, in one place.

Nothing here imports a platform-only module at import time: each one (fcntl, msvcrt,
ctypes' Windows DLLs) is imported inside the function that needs it, and a missing one
means "this capability is absent", never an exception into behave.  Each Windows branch
takes the platform's API through a seam (``_lock_api``, ``_kernel32``) so that it can be
unit-tested on Linux with that API faked (tests/test_portable.py).

Why no library: filelock (~22 ms to import on top of what behave loads; 4.x ~50 ms) and
portalocker (~50 ms) lock by path with a life cycle of their own, and psutil (~20 ms, a
compiled package) would be imported for two questions; what is needed is one call per
platform on a file or process we already hold (fcntl.flock / msvcrt.locking,
kill(pid, 0) / OpenProcess), each branch tested.
"""

from __future__ import annotations

import errno
import os
import time

WINDOWS = os.name == "nt"
# Every file we open with os.open() must be binary on Windows, where the C runtime
# otherwise translates "\n" to "\r\n" and our byte offsets stop matching the file.
O_BINARY = getattr(os, "O_BINARY", 0)


class LocksUnavailable(OSError):
    """This platform offers no cross-process file lock (neither fcntl nor msvcrt)."""


# -- cross-process locks on an open file ------------------------------------------------


def _lock_api():
    """("fcntl", module), ("msvcrt", module) or None; a seam for tests."""
    try:
        import fcntl

        return "fcntl", fcntl
    except ImportError:
        pass
    try:
        import msvcrt

        return "msvcrt", msvcrt
    except ImportError:
        return None


def locks_available() -> bool:
    return _lock_api() is not None


def lock(fd: int, blocking: bool = True) -> bool:
    """An exclusive lock on the open file `fd`, held until unlock() or close (or the
    process's end).  Blocking: waits; else returns False at once when another holder has
    it.  Raises LocksUnavailable where the platform has none.

    Unix: flock(), per open file.  Windows: msvcrt.locking() of the file's first byte, per
    handle (it may lie beyond the end of the file); its blocking mode gives up after 10 s,
    so waiting is a loop of non-blocking attempts."""
    api = _lock_api()
    if api is None:
        raise LocksUnavailable(errno.ENOLCK, "no cross-process file locks on this platform")
    kind, module = api
    if kind == "fcntl":
        try:
            module.flock(fd, module.LOCK_EX | (0 if blocking else module.LOCK_NB))
        except OSError as exc:
            if not blocking and exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        return True
    delay = 0.001
    while True:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            module.locking(fd, module.LK_NBLCK, 1)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EDEADLK, getattr(errno, "EDEADLOCK", 0)):
                raise
        if not blocking:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def unlock(fd: int) -> None:
    """Release lock(); do it before closing the file: Windows releases the locks of a closed
    handle only "depending on available system resources"."""
    api = _lock_api()
    if api is None:
        return
    kind, module = api
    if kind == "fcntl":
        module.flock(fd, module.LOCK_UN)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        module.locking(fd, module.LK_UNLCK, 1)


def release_and_close(fd: int) -> None:
    """unlock() (whatever it says: the file may never have been locked) and close."""
    try:
        unlock(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class HeldLock:
    """A locked open file; close() releases the lock first."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            release_and_close(fd)


# -- processes -------------------------------------------------------------------------

# Windows API constants (winnt.h, winbase.h).
_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
_SYNCHRONIZE = 0x00100000
_WAIT_TIMEOUT = 0x102
_ERROR_ACCESS_DENIED = 5


def _kernel32():
    """kernel32 with the signatures we call, and ctypes' last-error getter; a seam."""
    import ctypes
    from ctypes import wintypes

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)
    k32.OpenProcess.restype = wintypes.HANDLE
    k32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    k32.WaitForSingleObject.restype = wintypes.DWORD
    k32.WaitForSingleObject.argtypes = (wintypes.HANDLE, wintypes.DWORD)
    k32.GetProcessTimes.restype = wintypes.BOOL
    k32.GetProcessTimes.argtypes = (wintypes.HANDLE,) + (ctypes.POINTER(wintypes.FILETIME),) * 4
    k32.CloseHandle.argtypes = (wintypes.HANDLE,)
    return k32, ctypes.get_last_error


def pid_alive(pid: int | None) -> bool:
    """Is process `pid` running (on this machine)?  Never raises.

    Not kill(pid, 0) on Windows: there os.kill() with any signal other than the two
    console events terminates the process."""
    try:
        pid = int(pid or 0)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    if WINDOWS:
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # it exists, owned by someone else
    except (OSError, OverflowError):
        return False
    return True


def _windows_pid_alive(pid: int) -> bool:
    try:
        k32, last_error = _kernel32()
        handle = k32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION | _SYNCHRONIZE, False, pid)
        if not handle:
            return last_error() == _ERROR_ACCESS_DENIED  # exists, not ours
        try:
            return k32.WaitForSingleObject(handle, 0) == _WAIT_TIMEOUT  # not yet signalled
        finally:
            k32.CloseHandle(handle)
    except Exception:  # noqa: BLE001 - no ctypes, no kernel32: cannot tell
        return False


def process_start(pid: int) -> str:
    """When process `pid` started, as an opaque string ("0" when it cannot be told), so
    that a recycled pid reads as a different process.  Linux: /proc; Windows: the
    creation time; elsewhere (macOS, or /proc unreadable): `ps -o lstart=`."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError, ValueError):
        pass
    if WINDOWS:
        return _windows_process_start(pid)
    return _ps_start(pid)


def _windows_process_start(pid: int) -> str:
    try:
        import ctypes
        from ctypes import wintypes

        k32, _ = _kernel32()
        handle = k32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            return "0"
        try:
            times = [wintypes.FILETIME() for _ in range(4)]
            if not k32.GetProcessTimes(handle, *(ctypes.byref(t) for t in times)):
                return "0"
            created = times[0]
            return str((created.dwHighDateTime << 32) | created.dwLowDateTime)
        finally:
            k32.CloseHandle(handle)
    except Exception:  # noqa: BLE001
        return "0"


def _ps_start(pid: int) -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(int(pid))],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=2,
            check=False,
        ).stdout.decode("ascii", "replace")
    except (OSError, ValueError, subprocess.SubprocessError):
        return "0"
    stamp = "".join(ch for ch in out if ch.isalnum())
    return stamp or "0"


def uploader_process_options() -> dict:
    """Popen arguments that detach the uploader from the terminal's Ctrl-C: its own session
    on Unix, its own process group (no console window of its own) on Windows."""
    if WINDOWS:
        import subprocess

        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)
        flags |= getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)
        return {"creationflags": flags}
    return {"start_new_session": True}


# -- files -----------------------------------------------------------------------------


def pread(fd: int, size: int, offset: int) -> bytes:
    """os.pread where there is one (not on Windows): seek and read otherwise."""
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    parts = []
    while size > 0:
        piece = os.read(fd, size)
        if not piece:
            break
        parts.append(piece)
        size -= len(piece)
    return b"".join(parts)


def pwrite(fd: int, data: bytes, offset: int) -> int:
    """os.pwrite where there is one (not on Windows): seek and write otherwise."""
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, data, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return len(data)


def replace(source, target, patience: float = 2.0) -> None:
    """os.replace; on Windows a target that another process has open for a moment (a
    reader of report.json) refuses to be replaced: retry for up to `patience` seconds."""
    deadline = time.monotonic() + patience
    delay = 0.005
    while True:
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if not WINDOWS or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def unlink_closed(path) -> bool:
    """Delete a file we no longer hold open; False when it is gone or someone else still
    has it open (Windows refuses to delete such a file: the next scan will)."""
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    except PermissionError:
        if WINDOWS:
            return False
        raise
