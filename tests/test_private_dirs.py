"""Issue #21: temp directories another local account could prepare.

Each hostile case is made for real where it can be: a directory writable by everyone, a
symbolic link, and, as root with a second account (`useradd -M bstack-other`), directories
and links that account made itself.  The ownership check is also exercised through its
seam (private_dirs.owner_of) so that every case is tested without root too.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import faultkit as fk
import pytest

from behave_bstack.base import private_dirs
from behave_bstack.emulator import TraServer
from behave_bstack.journal import coordination
from behave_bstack.journal import store as journal
from behave_bstack.recording import session
from behave_bstack.recording.capture import attachment_entry
from behave_bstack.recording.outbox import Outbox
from behave_bstack.settings.config import load_settings

OTHER = "bstack-other"
POSIX = hasattr(os, "getuid")
ME = os.getuid() if POSIX else None

pytestmark = pytest.mark.skipif(not POSIX, reason="POSIX ownership and modes")


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def shared_tmp(monkeypatch):
    """A private stand-in for /tmp: world-writable with the sticky bit, reachable by a
    second account (pytest's tmp_path is below a 0700 directory).  In-process code sees it
    as tempfile.gettempdir(); subprocesses get it as TMPDIR."""
    path = Path(tempfile.mkdtemp(prefix="bstack-shared-tmp-"))
    os.chmod(path, 0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def other_uid() -> int:
    """The uid of a second local account, created if missing (root only)."""
    if not POSIX or os.getuid() != 0:
        pytest.skip("acting as a second account needs root")
    import pwd

    if shutil.which("useradd") is None:
        pytest.skip("useradd is not available")
    try:
        return pwd.getpwnam(OTHER).pw_uid
    except KeyError:
        pass
    made = subprocess.run(["useradd", "-M", OTHER], capture_output=True, text=True)
    if made.returncode not in (0, 9):  # 9: made meanwhile by a parallel run
        pytest.skip(f"useradd failed: {made.stderr.strip()}")
    return pwd.getpwnam(OTHER).pw_uid


def as_other(*cmd: str) -> None:
    """Run cmd as the second account (what it could do on a shared machine)."""
    subprocess.run(list(cmd), user=OTHER, group=OTHER, check=True, umask=0o022)


@pytest.fixture
def owned_by_other(monkeypatch):
    """fake(path): from now on `path` looks owned by uid ME + 4242 (the ownership seam)."""
    faked: set[str] = set()
    real = private_dirs.owner_of

    def owner_of(path, st):
        return ME + 4242 if os.path.abspath(path) in faked else real(path, st)

    monkeypatch.setattr(private_dirs, "owner_of", owner_of)
    return lambda path: faked.add(os.path.abspath(path))


def user_dir(tmp: Path) -> Path:
    return tmp / f"behave-bstack-{ME}"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- private_dirs: create and verify -----------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_ensure_creates_each_directory_0700(tmp_path, umask):
    old = os.umask(umask)
    try:
        made = private_dirs.ensure(tmp_path, "a", "b", "c")
    finally:
        os.umask(old)
    assert made == tmp_path / "a" / "b" / "c"
    for path in (tmp_path / "a", tmp_path / "a" / "b", made):
        assert path.is_dir() and not path.is_symlink()
        assert mode(path) == 0o700
        assert os.lstat(path).st_uid == ME


@pytest.mark.parametrize("found_mode", [0o700, 0o755, 0o750])
def test_ensure_accepts_an_existing_directory_of_ours(tmp_path, found_mode):
    (tmp_path / "mine").mkdir()
    os.chmod(tmp_path / "mine", found_mode)
    assert private_dirs.ensure(tmp_path, "mine", "inner") == tmp_path / "mine" / "inner"
    assert mode(tmp_path / "mine") == found_mode  # not changed behind the user's back


@pytest.mark.parametrize(
    ("found_mode", "problem"),
    [
        (0o777, "writable by group and others (mode 0777)"),
        (0o1777, "writable by group and others (mode 1777)"),
        (0o707, "writable by others (mode 0707)"),
        (0o770, "writable by group (mode 0770)"),
    ],
)
def test_ensure_refuses_a_directory_others_can_write(tmp_path, found_mode, problem):
    (tmp_path / "open").mkdir()
    os.chmod(tmp_path / "open", found_mode)
    with pytest.raises(private_dirs.Refused) as refused:
        private_dirs.ensure(tmp_path, "open", "inner")
    assert str(refused.value) == f"{tmp_path / 'open'}: {problem}"
    assert not (tmp_path / "open" / "inner").exists(), "nothing may be made inside"


def test_ensure_refuses_a_symbolic_link_to_a_directory(tmp_path):
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(private_dirs.Refused) as refused:
        private_dirs.ensure(tmp_path, "link", "inner")
    assert str(refused.value) == f"{tmp_path / 'link'}: a symbolic link"
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_ensure_refuses_a_dangling_symbolic_link_and_makes_nothing_where_it_points(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(private_dirs.Refused, match="a symbolic link"):
        private_dirs.ensure(tmp_path, "link")
    assert not (tmp_path / "target").exists()


def test_ensure_refuses_a_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(private_dirs.Refused) as refused:
        private_dirs.ensure(tmp_path, "plain", "inner")
    assert str(refused.value) == f"{tmp_path / 'plain'}: not a directory"


def test_ensure_refuses_what_it_cannot_create(tmp_path):
    with pytest.raises(private_dirs.Refused) as refused:
        private_dirs.ensure(tmp_path / "missing", "inner")
    assert str(refused.value) == (
        f"{tmp_path / 'missing' / 'inner'}: cannot create it (No such file or directory)"
    )


def test_ensure_refuses_a_directory_of_another_account_faked(tmp_path, owned_by_other):
    (tmp_path / "theirs").mkdir(mode=0o700)
    owned_by_other(tmp_path / "theirs")
    with pytest.raises(private_dirs.Refused) as refused:
        private_dirs.ensure(tmp_path, "theirs", "inner")
    assert str(refused.value) == (
        f"{tmp_path / 'theirs'}: owned by uid {ME + 4242}, not by this user (uid {ME})"
    )
    assert not (tmp_path / "theirs" / "inner").exists()


def test_ensure_refuses_a_directory_of_another_account_for_real(shared_tmp, other_uid):
    as_other("mkdir", "-m", "0700", str(shared_tmp / "theirs"))
    with pytest.raises(private_dirs.Refused) as refused:
        private_dirs.ensure(shared_tmp, "theirs", "inner")
    assert str(refused.value) == (
        f"{shared_tmp / 'theirs'}: owned by uid {other_uid}, not by this user (uid {ME})"
    )
    assert not (shared_tmp / "theirs" / "inner").exists()  # root could have made it


def test_a_directory_made_by_us_then_replaced_is_no_longer_trusted(tmp_path, owned_by_other):
    made = private_dirs.ensure(tmp_path, "a", "b", "key")
    assert private_dirs.untrusted(made, 3) is None
    owned_by_other(tmp_path / "a")
    assert private_dirs.untrusted(made, 3) == (
        f"{tmp_path / 'a'}: owned by uid {ME + 4242}, not by this user (uid {ME})"
    )
    assert private_dirs.untrusted(made, 2) is None  # only as many levels as asked


def test_without_posix_ownership_only_links_and_non_directories_are_refused(tmp_path, monkeypatch):
    """Windows has no os.getuid: modes and owners mean nothing there; links still count."""
    (tmp_path / "open").mkdir()
    os.chmod(tmp_path / "open", 0o777)
    (tmp_path / "link").symlink_to(tmp_path / "open")
    monkeypatch.delattr(os, "getuid")
    monkeypatch.setenv("USER", "alice smith")
    monkeypatch.setenv("LOGNAME", "alice smith")
    assert private_dirs.problem(tmp_path / "open") is None
    assert private_dirs.problem(tmp_path / "link") == "a symbolic link"
    assert private_dirs.user_tag() == "alice_smith"


def test_the_module_imports_without_posix_only_modules():
    code = (
        "import sys\n"
        "for name in ('fcntl', 'pwd', 'grp', 'termios', 'resource'): sys.modules[name] = None\n"
        "import behave_bstack.base.private_dirs as p\n"
        "print(p.NOFOLLOW == getattr(__import__('os'), 'O_NOFOLLOW', 0))\n"
    )
    out = subprocess.run([fk.sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr


# --- files inside: O_NOFOLLOW -------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="no O_NOFOLLOW here")
@pytest.mark.parametrize(
    "name",
    [journal.LOCK, journal.REPORT + ".tmp", journal.ACKS, "attachments/00001-shot.png"],
)
def test_journal_files_are_not_opened_through_a_symbolic_link(tmp_path, name):
    outbox = Outbox(tmp_path / "run")
    run_dir = outbox.run_dir
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (run_dir / name).parent.mkdir(mode=0o700, exist_ok=True)
    (run_dir / name).symlink_to(victim)
    with pytest.raises(OSError):
        if name == journal.LOCK:
            journal.try_lock(run_dir)
        elif name == journal.ACKS:
            journal.AckLog(run_dir)
        elif name.startswith("attachments"):
            attachment_entry(outbox, 1, b"\x89PNG", "shot.png", "image/png", 0)
        else:
            journal.write_report(run_dir, {"pending": 0})
    outbox.writer.close()
    assert victim.read_text() == "untouched"


# --- the journal's fallback --------------------------------------------------------------


def fallback_outbox(tmp_path: Path, capsys) -> tuple[Path, list[str]]:
    """open_outbox with a journal directory that cannot be written: (run dir, stderr lines)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings = load_settings({}, {"BSTACK_JOURNAL_DIR": str(blocker / "sub")}, str(tmp_path))
    outbox = session.open_outbox(settings, str(tmp_path))
    outbox.writer.close()
    return outbox.run_dir, capsys.readouterr().err.splitlines()


def test_fallback_is_this_users_directory_created_0700(tmp_path, shared_tmp, capsys):
    run_dir, lines = fallback_outbox(tmp_path, capsys)
    assert run_dir.parent == user_dir(shared_tmp) / "journal"
    assert mode(user_dir(shared_tmp)) == mode(run_dir.parent) == mode(run_dir) == 0o700
    assert lines == [
        f"behave-bstack: cannot write the journal in {tmp_path / 'a-file' / 'sub'} "
        f"(Not a directory); using {run_dir}"
    ]


def hostile_user_dir(kind: str, tmp: Path, tmp_path: Path, fake) -> str:
    """Prepare <tmp>/behave-bstack-<uid> the way another account could; the problem."""
    target = user_dir(tmp)
    if kind == "0777":
        target.mkdir()
        os.chmod(target, 0o777)
        return "writable by group and others (mode 0777)"
    if kind == "symlink":
        (tmp_path / "where-they-point").mkdir(mode=0o700)
        target.symlink_to(tmp_path / "where-they-point")
        return "a symbolic link"
    target.mkdir(mode=0o700)
    fake(target)
    return f"owned by uid {ME + 4242}, not by this user (uid {ME})"


@pytest.mark.parametrize("kind", ["0777", "symlink", "other-owner"])
def test_fallback_refuses_a_prepared_directory_and_uses_a_fresh_one(
    tmp_path, shared_tmp, capsys, owned_by_other, kind
):
    problem = hostile_user_dir(kind, shared_tmp, tmp_path, owned_by_other)
    run_dir, lines = fallback_outbox(tmp_path, capsys)
    fresh = run_dir.parent
    assert fresh.parent == shared_tmp and fresh.name.startswith("behave-bstack-journal-")
    assert fresh != user_dir(shared_tmp)
    assert private_dirs.problem(fresh) is None and mode(fresh) == 0o700
    assert (run_dir / journal.EVENTS).is_file()
    assert lines == [
        f"behave-bstack: cannot write the journal in {tmp_path / 'a-file' / 'sub'} "
        f"(Not a directory); not using {user_dir(shared_tmp)}: {problem}; using {run_dir}"
    ]
    assert not (user_dir(shared_tmp) / "journal").exists(), "nothing written where they chose"


# --- coordination ------------------------------------------------------------------------


def test_coordination_prefers_xdg_runtime_dir(tmp_path, shared_tmp, monkeypatch):
    runtime = tmp_path / "run-user"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    part = coordination.Participation("k" * 24)
    try:
        assert part.directory == runtime / "behave-bstack" / "builds" / ("k" * 24)
        assert coordination.default_root() == runtime / "behave-bstack" / "builds"
        assert mode(runtime / "behave-bstack") == mode(part.directory) == 0o700
    finally:
        part.leave()
    assert not user_dir(shared_tmp).exists()


@pytest.mark.parametrize("runtime_state", ["missing", "0777", "relative", "theirs"])
def test_an_unusable_xdg_runtime_dir_is_passed_over_for_the_temp_directory(
    tmp_path, shared_tmp, monkeypatch, owned_by_other, runtime_state
):
    """E.g. after sudo, XDG_RUNTIME_DIR still names the first user's /run/user/<uid>."""
    runtime = tmp_path / "run-user"
    if runtime_state == "0777":
        runtime.mkdir()
        os.chmod(runtime, 0o777)
    elif runtime_state == "theirs":
        runtime.mkdir(mode=0o700)
        owned_by_other(runtime)
    monkeypatch.setenv(
        "XDG_RUNTIME_DIR", "run-user" if runtime_state == "relative" else str(runtime)
    )
    part = coordination.Participation("k" * 24)
    try:
        assert part.directory == user_dir(shared_tmp) / "builds" / ("k" * 24)
        assert mode(user_dir(shared_tmp)) == mode(user_dir(shared_tmp) / "builds") == 0o700
    finally:
        part.leave()
    if runtime.exists():
        assert list(runtime.iterdir()) == []


@pytest.mark.parametrize("level", ["user", "builds", "key"])
@pytest.mark.parametrize("kind", ["0777", "symlink", "other-owner"])
def test_participation_refuses_a_prepared_directory(
    tmp_path, shared_tmp, owned_by_other, kind, level
):
    key = "f" * 24
    chain = [user_dir(shared_tmp), user_dir(shared_tmp) / "builds"]
    chain.append(chain[-1] / key)
    target = chain[["user", "builds", "key"].index(level)]
    for path in chain[: chain.index(target)]:
        path.mkdir(mode=0o700)
    pointed = tmp_path / "where-they-point"
    pointed.mkdir(mode=0o700)
    if kind == "0777":
        target.mkdir()
        os.chmod(target, 0o777)
    elif kind == "symlink":
        target.symlink_to(pointed)
    else:
        target.mkdir(mode=0o700)
        owned_by_other(target)
    with pytest.raises(private_dirs.Refused) as refused:
        coordination.Participation(key)
    assert refused.value.path == str(target)
    assert list(pointed.iterdir()) == [], "no lock file where the link points"
    if kind != "symlink":
        assert list(target.iterdir()) == [], "no lock file in their directory"


def test_wait_and_release_leave_a_replaced_directory_alone(tmp_path, owned_by_other):
    directory = private_dirs.ensure(tmp_path, "u", "builds", "key")
    (directory / "keeper").touch()
    owned_by_other(directory)
    assert coordination.wait_satisfied(str(directory), None) is True
    coordination.release_keeper(str(directory))
    assert sorted(p.name for p in directory.iterdir()) == ["keeper"], (
        "no lock made, nothing removed"
    )


# --- real behave runs ----------------------------------------------------------------------


@pytest.fixture
def srv():
    with TraServer(username="fk_user", access_key="fk_key") as server:
        yield server


def behave_env(srv, journal_dir: Path, tmp: Path, **extra: str) -> dict[str, str]:
    """Temp files in `tmp`; no XDG_RUNTIME_DIR (it would be preferred for coordination)."""
    return fk.bstack_env(srv, journal_dir, TMPDIR=str(tmp), XDG_RUNTIME_DIR="", **extra)


def prepare_as_other(kind: str, path: Path, tmp_path: Path) -> tuple[str, Path]:
    """What the second account does before our run; (the problem we must name, where a
    link points)."""
    pointed = tmp_path / "theirs"
    if kind == "0777-theirs":
        as_other("mkdir", "-m", "0777", str(path))
        return "owned by uid {uid}, not by this user (uid {me})", pointed
    if kind == "symlink-theirs":
        shared = path.parent / "their-dir"
        as_other("mkdir", "-m", "0777", str(shared))
        as_other("ln", "-s", str(shared), str(path))
        return "a symbolic link", shared
    as_other("mkdir", "-m", "0700", str(path))
    return "owned by uid {uid}, not by this user (uid {me})", pointed


def journal_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "cannot write the journal" in line]


@pytest.mark.parametrize("kind", ["0777-ours", "symlink-ours"])
def test_behave_journals_in_a_fresh_directory_past_a_prepared_one(srv, tmp_path, shared_tmp, kind):
    """What any account can prepare (no second account needed): a real behave run."""
    root = fk.write_suite(tmp_path / "suite", 6, failing={1}, attach={2})
    hostile = user_dir(shared_tmp)
    pointed = tmp_path / "theirs"
    pointed.mkdir(mode=0o700)
    if kind == "0777-ours":
        hostile.mkdir()
        os.chmod(hostile, 0o777)
        problem = "writable by group and others (mode 0777)"
    else:
        hostile.symlink_to(pointed)
        problem = "a symbolic link"
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    run = fk.run_behave(root, behave_env(srv, blocker / "sub", shared_tmp))
    assert_fresh_journal_and_delivery(run, root, srv, shared_tmp, hostile, problem, blocker)
    assert list(pointed.iterdir()) == []


@pytest.mark.parametrize("kind", ["0777-theirs", "symlink-theirs", "0700-theirs"])
def test_behave_refuses_a_directory_another_account_prepared(
    srv, tmp_path, shared_tmp, other_uid, kind
):
    root = fk.write_suite(tmp_path / "suite", 6, failing={1}, attach={2})
    hostile = user_dir(shared_tmp)
    problem, pointed = prepare_as_other(kind, hostile, tmp_path)
    problem = problem.format(uid=other_uid, me=ME)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    run = fk.run_behave(root, behave_env(srv, blocker / "sub", shared_tmp))
    assert_fresh_journal_and_delivery(run, root, srv, shared_tmp, hostile, problem, blocker)
    if pointed.exists():
        assert list(pointed.iterdir()) == [], "nothing written where their link points"


def assert_fresh_journal_and_delivery(run, root, srv, tmp, hostile, problem, blocker) -> None:
    assert run.returncode == fk.null_rc(root)
    lines = journal_lines(run.stderr)
    assert len(lines) == 1, run.stderr
    assert f"not using {hostile}: {problem}; using " in lines[0], lines[0]
    run_dir = Path(lines[0].rsplit("; using ", 1)[1])
    fresh = run_dir.parent
    assert (
        fresh.parent == tmp and fresh.name.startswith("behave-bstack-journal-") and fresh != hostile
    )
    assert private_dirs.problem(fresh) is None and mode(fresh) == mode(run_dir) == 0o700
    assert (run_dir / journal.ATTACHMENTS).is_dir()
    if hostile.is_dir() and not hostile.is_symlink():
        assert list(hostile.iterdir()) == [], "nothing written in their directory"
    fk.assert_exactly_once(srv, run_dir, min_tests=6)
    assert str(blocker / "sub") in lines[0]


@pytest.mark.parametrize("kind", ["0777-ours", "symlink-ours", "0700-theirs"])
def test_behave_runs_uncoordinated_past_a_prepared_coordination_directory(
    srv, tmp_path, shared_tmp, request, kind
):
    """A run that would register with the other processes of its build (an explicit build
    run identifier) finds <tmp>/behave-bstack-<uid>/builds prepared: one line, no
    registration, the build still finished once, exit code unchanged."""
    root = fk.write_suite(tmp_path / "suite", 5, failing={3})
    user_dir(shared_tmp).mkdir(mode=0o700)
    builds = user_dir(shared_tmp) / "builds"
    pointed = tmp_path / "theirs"
    pointed.mkdir(mode=0o700)
    if kind == "0777-ours":
        builds.mkdir()
        os.chmod(builds, 0o777)
        problem = "writable by group and others (mode 0777)"
    elif kind == "symlink-ours":
        builds.symlink_to(pointed)
        problem = "a symbolic link"
    else:
        uid = request.getfixturevalue("other_uid")
        os.chmod(user_dir(shared_tmp), 0o777)  # let them in for a moment, then close it
        as_other("mkdir", "-m", "0777", str(builds))
        os.chmod(user_dir(shared_tmp), 0o700)
        problem = f"owned by uid {uid}, not by this user (uid {ME})"
    env = behave_env(
        srv, tmp_path / "journal", shared_tmp, BROWSERSTACK_BUILD_RUN_IDENTIFIER="r-21"
    )
    run = fk.run_behave(root, env)
    assert run.returncode == fk.null_rc(root)
    lines = [line for line in run.stderr.splitlines() if "not using" in line]
    assert lines == [
        f"behave-bstack: not using {builds}: {problem}; this process finishes the build "
        "without waiting for the others of its run"
    ], run.stderr
    run_dir = fk.only_run_dir(tmp_path / "journal")
    meta = json.loads((run_dir / journal.EVENTS).read_text().splitlines()[0])
    assert meta["op"] == "meta" and meta["body"]["coordination"] is None
    fk.assert_exactly_once(srv, run_dir, min_tests=5)
    assert list(pointed.iterdir()) == []
    if not builds.is_symlink():
        assert list(builds.iterdir()) == [], "no key directory or lock file in theirs"


def test_behave_coordinates_in_its_own_verified_directory(srv, tmp_path, shared_tmp):
    """The ordinary case: the directory is created 0700 and used."""
    root = fk.write_suite(tmp_path / "suite", 3)
    env = behave_env(
        srv, tmp_path / "journal", shared_tmp, BROWSERSTACK_BUILD_RUN_IDENTIFIER="r-21"
    )
    run = fk.run_behave(root, env)
    assert run.returncode == 0, run.stderr
    assert "not using" not in run.stderr
    run_dir = fk.only_run_dir(tmp_path / "journal")
    meta = json.loads((run_dir / journal.EVENTS).read_text().splitlines()[0])
    directory = Path(meta["body"]["coordination"]["dir"])
    assert directory.parent == user_dir(shared_tmp) / "builds"
    for path in (user_dir(shared_tmp), directory.parent, directory):
        assert mode(path) == 0o700 and private_dirs.problem(path) is None
    fk.assert_exactly_once(srv, run_dir, min_tests=3)
