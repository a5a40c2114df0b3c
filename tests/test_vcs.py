"""git_info / repo_root / relative_to_repo against real temporary repositories."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from behave_bstack.origin.vcs import git_info, relative_to_repo, repo_root

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

NO_CI: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits work on a fresh machine; the user's git config and CI variables stay out."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)
    # Never discover a repository above the test's own directory.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    for key, value in {
        "GIT_AUTHOR_NAME": "Ada Author",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Chloé Committer",
        "GIT_COMMITTER_EMAIL": "chloe@example.com",
        "GIT_AUTHOR_DATE": "2025-01-02T03:04:05Z",
        "GIT_COMMITTER_DATE": "2025-01-02T03:04:05Z",
    }.items():
        monkeypatch.setenv(key, value)


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, encoding="utf-8"
    )
    return result.stdout.strip()


def make_repo(path: Path, message: str = "Add cart feature\n\nWith a longer body.") -> Path:
    path.mkdir(parents=True)
    git(path, "-c", "init.defaultBranch=main", "init", "-q")
    (path / "features").mkdir()
    (path / "features" / "cart.feature").write_text("Feature: Cart\n", encoding="utf-8")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)
    return path


def test_normal_repository(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    assert git_info(repo, environ=NO_CI) == {
        "name": "git",
        "sha": git(repo, "rev-parse", "HEAD"),
        "branch": "main",
        "commit_message": "Add cart feature\n\nWith a longer body.",
        "committer_name": "Chloé Committer",
        "committer_email": "chloe@example.com",
    }


def test_from_a_subdirectory_and_a_feature_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "feature/checkout")
    info = git_info(repo / "features", environ=NO_CI)
    assert info["branch"] == "feature/checkout"
    assert info["sha"] == git(repo, "rev-parse", "HEAD")


def test_tags_on_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "tag", "v1.9")
    git(repo, "tag", "-a", "v1.10", "-m", "release 1.10")
    info = git_info(repo, environ=NO_CI)
    assert info["tag"] == "v1.10"  # natural order: 1.10 after 1.9
    assert info["branch"] == "main"


def test_tag_on_an_older_commit_is_not_reported(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "tag", "v1")
    (repo / "x.txt").write_text("x", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    assert "tag" not in git_info(repo, environ=NO_CI)


def test_remote_branches_are_not_mistaken_for_branches(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "origin")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    git(clone, "checkout", "-q", "--detach")
    info = git_info(clone, environ=NO_CI)
    assert "branch" not in info  # "origin/main" points here but is not a local branch


def test_detached_head_without_ci_omits_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "--detach")
    info = git_info(repo, environ=NO_CI)
    assert "branch" not in info
    assert info["sha"] == git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize(
    ("environ", "branch"),
    [
        ({"GITHUB_HEAD_REF": "feature/pr", "GITHUB_REF_NAME": "12/merge"}, "feature/pr"),
        ({"GITHUB_HEAD_REF": "", "GITHUB_REF_NAME": "main", "GITHUB_REF_TYPE": "branch"}, "main"),
        ({"GITHUB_REF_NAME": "v2", "GITHUB_REF_TYPE": "tag"}, None),
        ({"CI_COMMIT_REF_NAME": "develop"}, "develop"),
        ({"CI_COMMIT_REF_NAME": "v2", "CI_COMMIT_TAG": "v2"}, None),
        ({"BUILD_SOURCEBRANCH": "refs/heads/release/2"}, "release/2"),
        ({"BUILD_SOURCEBRANCH": "refs/pull/7/merge"}, None),
        ({"BRANCH_NAME": "hotfix"}, "hotfix"),
        ({"BRANCH_NAME": "PR-7", "CHANGE_ID": "7", "CHANGE_BRANCH": "fix/cart"}, "fix/cart"),
        ({"GIT_BRANCH": "origin/feature/x"}, "feature/x"),
        ({"CIRCLE_BRANCH": "circle"}, "circle"),
        ({"BUILDKITE_BRANCH": "v3", "BUILDKITE_TAG": "v3"}, None),
    ],
)
def test_detached_head_takes_branch_from_ci(
    tmp_path: Path, environ: dict[str, str], branch: str | None
) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "--detach")
    assert git_info(repo, environ=environ).get("branch") == branch


def test_attached_head_ignores_ci_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    info = git_info(repo, environ={"GITHUB_HEAD_REF": "something-else"})
    assert info["branch"] == "main"


def test_tag_from_ci_when_the_clone_lacks_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "--detach")
    info = git_info(repo, environ={"GITHUB_REF_NAME": "v9.0", "GITHUB_REF_TYPE": "tag"})
    assert info["tag"] == "v9.0"
    assert "branch" not in info


def test_shallow_clone(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "origin")
    (origin / "y.txt").write_text("y", encoding="utf-8")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "Second commit")
    git(origin, "tag", "v2")
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{origin.as_posix()}", str(clone)],
        check=True,
    )
    assert (clone / ".git" / "shallow").exists()
    info = git_info(clone, environ=NO_CI)
    assert info == {
        "name": "git",
        "sha": git(origin, "rev-parse", "HEAD"),
        "branch": "main",
        "tag": "v2",
        "commit_message": "Second commit",
        "committer_name": "Chloé Committer",
        "committer_email": "chloe@example.com",
    }
    git(clone, "checkout", "-q", "--detach")
    assert "branch" not in git_info(clone, environ=NO_CI)  # not "grafted", not "main"


def test_repository_without_commits(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert git_info(empty, environ=NO_CI) is None
    assert repo_root(empty) == os.path.realpath(empty)


def test_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_info(plain, environ=NO_CI) is None
    assert repo_root(plain) is None


def test_outside_any_repository_git_is_not_started(tmp_path: Path, monkeypatch) -> None:
    import behave_bstack.origin.vcs as vcs

    asked = []
    monkeypatch.setattr(vcs, "_run_git", lambda *args, **kwargs: asked.append(args))
    monkeypatch.delenv("GIT_DIR", raising=False)
    plain = tmp_path / "plain" / "deeper"
    plain.mkdir(parents=True)
    assert repo_root(plain) is None
    assert asked == []
    (tmp_path / "plain" / ".git").mkdir()  # a parent looks like a repository: git decides
    repo_root(plain)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    repo_root(tmp_path)
    assert len(asked) == 2


def test_missing_directory(tmp_path: Path) -> None:
    assert git_info(tmp_path / "nope", environ=NO_CI) is None
    assert repo_root(tmp_path / "nope") is None


def test_git_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "repo")
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    assert git_info(repo, environ=NO_CI) is None
    assert repo_root(repo) is None


def _fake_git(tmp_path: Path, body: str) -> Path:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    script = bin_dir / "git"
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(0o755)
    return bin_dir


@pytest.mark.skipif(sys.platform == "win32", reason="uses a POSIX shell script as git")
def test_hanging_git_is_killed_within_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    pid_file = tmp_path / "sleep.pid"
    # Not `exec`: the shell's child must die too, or it would hold the pipe open.
    bin_dir = _fake_git(tmp_path, f"sleep 10 &\necho $! > '{pid_file}'\nwait")
    # The fake git shadows the real one; `sleep` is still found further down PATH.
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    started = time.monotonic()
    assert git_info(repo, timeout=0.5, environ=NO_CI) is None
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 2.5  # it really hung, and was cut at the timeout
    started = time.monotonic()
    assert repo_root(repo, timeout=0.5) is None
    assert time.monotonic() - started < 2.5

    sleeper = int(pid_file.read_text().strip())
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{sleeper}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            break  # gone
        if state == "Z":
            break  # killed, waiting for its reaper
        time.sleep(0.05)
    else:
        pytest.fail("the hung git's child process was left running")


@pytest.mark.skipif(sys.platform == "win32", reason="uses a POSIX shell script as git")
def test_git_printing_garbage_gives_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = _fake_git(tmp_path, "echo 'not what we asked for'")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert git_info(tmp_path, environ=NO_CI) is None


def test_git_info_uses_os_environ_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "--detach")
    monkeypatch.setenv("CI_COMMIT_REF_NAME", "from-env")
    monkeypatch.delenv("CI_COMMIT_TAG", raising=False)
    for name in ("GITHUB_HEAD_REF", "GITHUB_REF_TYPE", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CI_COMMIT_BRANCH", raising=False)
    assert git_info(repo)["branch"] == "from-env"


def test_repo_root_from_subdirectory(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    root = repo_root(repo / "features")
    assert root == os.path.realpath(repo)
    assert os.path.isabs(root)


def test_relative_to_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "repo")
    root = repo_root(repo)
    feature = repo / "features" / "cart.feature"
    assert relative_to_repo(str(feature), root) == "features/cart.feature"
    monkeypatch.chdir(repo / "features")
    assert relative_to_repo("cart.feature", root) == "features/cart.feature"
    assert relative_to_repo("../features/./cart.feature", root) == "features/cart.feature"


def test_relative_to_repo_outside_or_unknown(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    root = repo_root(repo)
    assert relative_to_repo(str(tmp_path / "elsewhere.feature"), root) is None
    assert relative_to_repo(str(tmp_path / "repo-other" / "a.feature"), root) is None
    assert relative_to_repo(root, root) is None
    assert relative_to_repo(str(repo / "features" / "cart.feature"), None) is None
    assert relative_to_repo("", root) is None


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_relative_to_repo_through_a_symlink(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    link = tmp_path / "link"
    link.symlink_to(repo, target_is_directory=True)
    root = repo_root(repo)  # git reports the real path
    assert relative_to_repo(str(link / "features" / "cart.feature"), root) == (
        "features/cart.feature"
    )
    assert relative_to_repo(str(repo / "features" / "cart.feature"), str(link)) == (
        "features/cart.feature"
    )
