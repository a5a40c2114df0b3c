"""Directories of ours in a place every local account can write: the system temp directory.

Two live there: the journal's fallback when the configured journal directory cannot be
written, and the directory where the processes of one build register (coordination.py).
Their names are predictable, so on a shared machine another account can make them first:
a directory it owns (it can rename ours away and put its own files in their place), one
writable by everyone, or a symbolic link to somewhere else.  So, as tools that use temp
directories carefully do (ssh-agent, tmux, systemd's runtime directories):

- the names are per user: `<tmp>/behave-bstack-<uid>/...`;
- ensure() creates each missing directory with mode 0700, and verifies every directory it
  creates or finds: a real directory (not a symbolic link), owned by this user, not
  writable by group or others.  Anything else raises Refused, whose text is the path and the
  problem in one line; the caller goes on without it (a fresh mkdtemp() directory for the
  journal, no cross-process coordination for a build);
- files inside are opened with O_NOFOLLOW where the platform has it (NOFOLLOW).

The temp directory itself is trusted as the platform provides it (world-writable with the
sticky bit on POSIX, so nobody else can rename or remove what we own inside it).

Ownership and mode bits exist in the POSIX sense only where os.getuid does; elsewhere
(Windows, whose temp directory is per user anyway) only "a real directory, not a link" is
checked.  The module imports nothing platform-specific.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # 0 where the platform has no such flag
PREFIX = "behave-bstack"


class Refused(OSError):
    """A directory we will not use; str() is "<path>: <problem>"."""

    def __init__(self, path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


def my_uid() -> int | None:
    getuid = getattr(os, "getuid", None)
    return getuid() if getuid is not None else None


def owner_of(path, st: os.stat_result) -> int:
    """Who owns `path` (its lstat() result given).  The one seam tests replace to fake a
    directory owned by another account where they cannot create one for real."""
    return st.st_uid


def problem(path) -> str | None:
    """Why `path` is not a directory we may trust, or None when it is."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot examine it ({exc.strerror or exc})"
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    isjunction = getattr(os.path, "isjunction", None)  # Windows, Python >= 3.12
    if isjunction is not None and isjunction(path):
        return "a junction"
    uid = my_uid()
    if uid is None:
        return None  # no POSIX ownership or modes here
    owner = owner_of(path, st)
    if owner != uid:
        return f"owned by uid {owner}, not by this user (uid {uid})"
    writable = [
        who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if st.st_mode & bit
    ]
    if writable:
        return f"writable by {' and '.join(writable)} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def ensure(base, *names: str) -> Path:
    """base/names[0]/names[1]/...: each one created with mode 0700 if missing, and each one
    (created or found) verified with problem().  `base` itself is not checked: it is the
    temp directory, or a directory the caller verified.  Raises Refused."""
    current = Path(base)
    for name in names:
        current = current / name
        try:
            os.mkdir(current, 0o700)  # the umask can only take bits away
        except FileExistsError:
            pass  # found: verified below like a new one
        except OSError as exc:
            raise Refused(current, f"cannot create it ({exc.strerror or exc})") from None
        found = problem(current)
        if found is not None:
            raise Refused(current, found)
    return current


def untrusted(path, levels: int) -> str | None:
    """The first problem of `path` and of its `levels - 1` parents (a directory named in a
    journal, used again later: by then it may have been replaced), as "<path>: <problem>"."""
    current = Path(path)
    for _ in range(levels):
        found = problem(current)
        if found is not None:
            return f"{current}: {found}"
        current = current.parent
    return None


def user_tag() -> str:
    """What makes a name in a shared directory this user's: the uid, else the login name."""
    uid = my_uid()
    if uid is not None:
        return str(uid)
    try:
        import getpass

        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name known: one name for all is still per machine
        name = ""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "user"


def _temp_dir() -> Path:
    import tempfile  # only here: it costs a few ms of every run's start

    return Path(tempfile.gettempdir())


def journal_fallback(run_id: str) -> tuple[Path, str | None]:
    """The run directory for a journal that cannot go where it was configured:
    <tmp>/behave-bstack-<uid>/journal/<run_id>, or, if that directory is refused, <run_id>
    in a fresh mkdtemp() directory.  Returns (run directory, the refusal or None)."""
    temp = _temp_dir()
    try:
        return ensure(temp, f"{PREFIX}-{user_tag()}", "journal") / run_id, None
    except Refused as exc:
        import tempfile

        return Path(tempfile.mkdtemp(prefix=f"{PREFIX}-journal-")) / run_id, str(exc)


def coordination_base() -> tuple[Path, tuple[str, ...]]:
    """Where the processes of a build register: $XDG_RUNTIME_DIR/behave-bstack/builds when
    XDG_RUNTIME_DIR names a directory of ours (per user, never shared, emptied at logout),
    else <tmp>/behave-bstack-<uid>/builds.  An XDG_RUNTIME_DIR that is not one (unset, gone,
    or another user's, as after sudo) is passed over silently: the temp directory's own
    checks follow.  Returns (trusted base, names below it)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and problem(xdg) is None:
        return Path(xdg), (PREFIX, "builds")
    return _temp_dir(), (f"{PREFIX}-{user_tag()}", "builds")


def coordination_dir(key: str, root=None) -> Path:
    """The (created, verified) directory of one build run; `root` replaces the default
    <base>/.../builds (tests).  Raises Refused."""
    if root is not None:
        root = Path(root)
        return ensure(root.parent, root.name, key)
    base, names = coordination_base()
    return ensure(base, *names, key)
