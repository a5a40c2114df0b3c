"""A simulated platform: Linux with what Windows (and macOS) lack taken away.

Installed by sitecustomize.py in this directory (put on PYTHONPATH: every Python process a
test starts, behave, the uploader, `behave-bstack`) and by tests/conftest.py in the pytest
process itself, when BSTACK_SIMULATE_PLATFORM is set:

- the modules only Unix has cannot be imported (fcntl, resource, termios, ...);
- os.pread/os.pwrite, os.uname and mmap.MAP_SHARED are gone (Windows has none of them),
  and so are os.getuid/geteuid/getgid/getegid, except in the pytest process, whose own
  tools use them (behave, the uploader and `behave-bstack` run as subprocesses without);
- /proc and /sys cannot be read by behave_bstack's code (macOS and Windows have neither;
  the tests' own tools, e.g. faultkit finding the uploader's pid, still read them);
- os.getppid() keeps answering the parent a process started with, as on Windows, where it
  does not change when the parent dies;
- "windows" (the default): a stand-in `msvcrt` offers locking() with the Windows calling
  convention (lock the bytes from the file's position; LK_NBLCK fails with EACCES; per
  handle), built on the real flock() taken before fcntl is hidden, so the code's Windows
  lock branch really runs across processes.  It is handed to behave_bstack.base.portable only
  (its _lock_api seam, replaced as the module loads): in sys.modules it would make the
  standard library (subprocess, asyncio) believe it runs on Windows;
  "bare": no msvcrt either -- a platform without any file lock.

What cannot be simulated here: os.name stays "posix", so the branches chosen by it (the
Windows process API through ctypes, process groups) are unit-tested with their API faked
(tests/test_portable.py).
"""

from __future__ import annotations

import builtins
import errno
import importlib.abc
import io
import os
import sys
import time
import types

HIDDEN = ("fcntl", "resource", "termios", "tty", "pty", "pwd", "grp", "syslog", "posix_ipc")
UNREADABLE = ("/proc/", "/sys/")
MODES = ("windows", "bare")
REAL_FCNTL = None  # fcntl as it was before install() hid it (for the tests' own tools)


class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r} (simulated platform)", name=name)
        return None


def _fake_msvcrt(real_fcntl) -> types.ModuleType:
    module = types.ModuleType("msvcrt", "stand-in for Windows' msvcrt (simulated platform)")
    module.LK_UNLCK, module.LK_LOCK, module.LK_NBLCK, module.LK_RLCK, module.LK_NBRLCK = range(5)

    def locking(fd: int, mode: int, nbytes: int) -> None:
        if mode == module.LK_UNLCK:
            real_fcntl.flock(fd, real_fcntl.LOCK_UN)
            return
        tries = 10 if mode in (module.LK_LOCK, module.LK_RLCK) else 1
        for attempt in range(tries):
            try:
                real_fcntl.flock(fd, real_fcntl.LOCK_EX | real_fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if attempt + 1 < tries:
                    time.sleep(1)
        raise OSError(errno.EACCES if tries == 1 else errno.EDEADLK, "Permission denied")

    module.locking = locking
    return module


class _PatchPortable(importlib.abc.MetaPathFinder):
    """Once behave_bstack.base.portable has loaded, its _lock_api() answers the stand-in."""

    def __init__(self, msvcrt) -> None:
        self.msvcrt = msvcrt

    def find_spec(self, name, path=None, target=None):
        if name != "behave_bstack.base.portable":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader, msvcrt = spec.loader, self.msvcrt
        exec_module = loader.exec_module

        def exec_and_patch(module) -> None:
            exec_module(module)
            module._lock_api = lambda: ("msvcrt", msvcrt)

        loader.exec_module = exec_and_patch
        return spec


def _from_package() -> bool:
    """Is the open() being called from behave_bstack's code (directly or via pathlib)?"""
    frame = sys._getframe(2)
    for _ in range(4):
        if frame is None:
            return False
        if frame.f_globals.get("__name__", "").startswith("behave_bstack."):
            return True
        frame = frame.f_back
    return False


def _guard_open(original):
    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)):
            path = os.fsdecode(file)
            if path.startswith(UNREADABLE) and _from_package():
                raise PermissionError(errno.EACCES, "Permission denied (simulated platform)", path)
        return original(file, *args, **kwargs)

    return guarded


def install(mode: str = "windows", keep_ids: bool = False) -> None:
    if getattr(sys, "_bstack_simulated_platform", None):
        return
    if mode not in MODES:
        mode = "windows"
    import fcntl as real_fcntl  # before it is hidden: the stand-in msvcrt needs flock()
    import mmap

    global REAL_FCNTL
    REAL_FCNTL = real_fcntl

    for name in HIDDEN:
        sys.modules.pop(name, None)
    sys.meta_path.insert(0, _Hide())
    if mode == "windows":
        stand_in = _fake_msvcrt(real_fcntl)
        loaded = sys.modules.get("behave_bstack.base.portable")
        if loaded is not None:
            loaded._lock_api = lambda: ("msvcrt", stand_in)
        else:
            sys.meta_path.insert(0, _PatchPortable(stand_in))
    removed = ("pread", "pwrite", "uname")
    if not keep_ids:
        removed += ("getuid", "geteuid", "getgid", "getegid")
    for name in removed:
        if hasattr(os, name):
            delattr(os, name)
    if hasattr(mmap, "MAP_SHARED"):
        delattr(mmap, "MAP_SHARED")
    guarded = _guard_open(io.open)
    builtins.open = io.open = guarded
    first_parent = os.getppid()
    os.getppid = lambda: first_parent
    sys._bstack_simulated_platform = mode
    log = os.environ.get("BSTACK_SIMULATE_PLATFORM_LOG")
    if log:  # which processes ran on it, for the tests that check it reached them all
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{mode} {' '.join(getattr(sys, 'orig_argv', sys.argv))}\n")


def install_from_env(keep_ids: bool = False) -> None:
    mode = os.environ.get("BSTACK_SIMULATE_PLATFORM")
    if mode:
        install(mode, keep_ids)
