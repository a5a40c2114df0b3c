"""Install and housekeeping (issue #17, item 6): delivered journals are pruned after each
run (keep the newest N), `behave-bstack clean` removes them on demand, and the package
builds into an sdist and a wheel that pass `twine check`."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import faultkit as fk
import pytest

from behave_bstack.command import main as cli
from behave_bstack.emulator import TraServer
from behave_bstack.journal import store as journal
from behave_bstack.journal.housekeeping import delivered_by_report
from behave_bstack.settings.config import DEFAULT_KEEP_JOURNALS, load_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def srv():
    with TraServer(username="fk_user", access_key="fk_key") as server:
        yield server


def delivered_journal(srv, journal_dir: Path, name: str) -> Path:
    run_dir = fk.write_journal(journal_dir / name, tests=1)
    report = fk.deliver(run_dir, fk.options_for(srv))
    assert report["pending"] == 0
    return run_dir


def refused_journal(srv, journal_dir: Path, name: str) -> Path:
    """Every call answered, one refused (422): settled, but not fully delivered."""
    run_dir = fk.write_journal(journal_dir / name, tests=2, names={1: "refuse me"})
    srv.faults.reject("refuse me")
    try:
        report = fk.deliver(run_dir, fk.options_for(srv))
    finally:
        srv.faults.clear()
    assert report["pending"] == 0 and sum(report["failed"].values()) >= 1
    return run_dir


def running_journal(journal_dir: Path, name: str) -> Path:
    """A journal whose writer (this process) is alive and has not ended it."""
    writer = journal.JournalWriter(journal_dir / name)
    writer.append("meta", {"hostname": socket.gethostname(), "pid": os.getpid()})
    writer.append("build_start", {"name": "b", "project_name": "p", "started_at": 1}, "build")
    writer.close()
    return journal_dir / name


def clean(root: Path, *argv: str, env: dict | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(
        ["clean", "--journal-dir", str(root / "journal"), *argv],
        stdout=out,
        stderr=io.StringIO(),
        environ=env or {},
        cwd=str(root),
    )
    return code, out.getvalue()


def test_keep_journals_setting():
    assert load_settings({}, {}, "/tmp").keep_journals == DEFAULT_KEEP_JOURNALS == 20
    assert load_settings({}, {"BSTACK_KEEP_JOURNALS": "3"}, "/tmp").keep_journals == 3
    assert load_settings({"bstack.keep_journals": "0"}, {}, "/tmp").keep_journals == 0
    bad = load_settings({"bstack.keep_journals": "-1"}, {}, "/tmp")
    assert bad.keep_journals == 20 and "keep_journals" in bad.problems[0]


def test_a_run_prunes_delivered_journals_beyond_keep(srv, tmp_path):
    """Four old delivered journals, one offline, one with a refused call; a live behave
    run with keep_journals=2: the two oldest delivered ones go, nothing else."""
    root = fk.write_suite(tmp_path, 3)
    journals = root / "journal"
    old = [delivered_journal(srv, journals, f"20200101-00000{i}-1-aaaa") for i in range(4)]
    offline = fk.write_journal(journals / "20200101-000010-1-bbbb", tests=1)
    refused = refused_journal(srv, journals, "20200101-000011-1-cccc")
    run = fk.run_behave(root, fk.bstack_env(srv, journals, BSTACK_KEEP_JOURNALS="2"))
    assert run.returncode == 0, run.stderr
    left = {p.name for p in journal.run_directories(journals)}
    newest = max(left)
    assert delivered_by_report(journals / newest)  # this run's own journal, delivered
    assert left == {old[3].name, newest, offline.name, refused.name}


def test_keep_journals_zero_keeps_everything(srv, tmp_path):
    root = fk.write_suite(tmp_path, 1)
    journals = root / "journal"
    for i in range(3):
        delivered_journal(srv, journals, f"20200101-00000{i}-1-aaaa")
    run = fk.run_behave(root, fk.bstack_env(srv, journals, BSTACK_KEEP_JOURNALS="0"))
    assert run.returncode == 0
    assert len(list(journal.run_directories(journals))) == 4


def test_clean_removes_delivered_journals_only_and_all_spares_running_ones(srv, tmp_path):
    journals = tmp_path / "journal"
    done = delivered_journal(srv, journals, "20200101-000001-1-aaaa")
    offline = fk.write_journal(journals / "20200101-000002-1-bbbb", tests=1)
    refused = refused_journal(srv, journals, "20200101-000003-1-cccc")
    running = running_journal(journals, "20200101-000004-1-dddd")

    code, out = clean(tmp_path, "--dry-run")
    assert code == 0 and f"would remove {done} (fully delivered)" in out
    assert "would remove 1 journal, kept 3" in out
    assert done.exists()  # a dry run removes nothing

    code, out = clean(tmp_path)
    assert code == 0 and not done.exists()
    assert f"kept {offline} (" in out and "pending" in out
    assert f"kept {refused} (" in out and "refused" in out
    assert f"kept {running} (its behave run is still going)" in out
    assert offline.exists() and refused.exists() and running.exists()

    code, out = clean(tmp_path, "--all")
    assert code == 0 and "removed 2 journals, kept 1" in out
    assert not offline.exists() and not refused.exists() and running.exists()


def test_clean_help(capsys):
    assert (
        cli.main(["clean", "--help"], stdout=io.StringIO(), stderr=io.StringIO(), environ={}) == 0
    )
    out = capsys.readouterr().out
    assert "--all" in out and "--dry-run" in out


def test_readme_install_and_gitignore():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    install = readme.split("## Install and register", 1)[1].split("\n## ", 1)[0]
    # No command installs it from PyPI (it is not published); the text may say so.
    assert not re.search(r"^pip install behave-bstack\s*(#|$)", install, re.M)
    assert "git clone" in install and ".whl" in install
    assert ".behave-bstack/" in install and ".gitignore" in install


def test_pyproject_is_release_ready():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^readme = "README.md"$', text, re.M)
    assert re.search(r'^license = "MIT"$', text, re.M)
    manifest = (REPO / "MANIFEST.in").read_text(encoding="utf-8")
    assert "graft docs" in manifest and "README.md" in manifest


@pytest.mark.skipif(
    not (importlib.util.find_spec("build") and importlib.util.find_spec("twine")),
    reason="build and twine are in the test extras",
)
def test_sdist_and_wheel_build_and_pass_twine_check(tmp_path):
    import setuptools

    if tuple(int(p) for p in setuptools.__version__.split(".")[:2]) < (77, 0):
        pytest.skip("--no-isolation needs setuptools>=77 (the test extras)")
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    files = sorted(p.name for p in dist.iterdir())
    assert len(files) == 2 and files[0].endswith(".whl") and files[1].endswith(".tar.gz")
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    import tarfile

    with tarfile.open(next(dist.glob("*.tar.gz"))) as sdist:
        names = sdist.getnames()
    assert any(n.endswith("/README.md") for n in names)
    assert any(n.endswith("/docs/cli.md") for n in names)
