"""The git commit a run tested: ``version_control`` for start build (tra-api.md §2.1).

Never hangs, never raises: git missing, not a repository, a repository without commits,
a git that blocks (credential prompt, slow network filesystem, a wrapper script) all end
in "return what we have, or None" within ``timeout`` seconds in total. One git process
gives everything ``git_info`` needs (sha, committer, message, branch and tags through
``%D`` decorations).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Mapping

__all__ = ["git_info", "repo_root", "relative_to_repo"]

# One `git log` answers everything: fields separated by NUL, the free-form message last.
_LOG_FORMAT = "%H%x00%cn%x00%ce%x00%D%x00%B"
_LOG_ARGS = (
    "-c",
    "i18n.logOutputEncoding=UTF-8",
    "log",
    "-1",
    "--no-color",
    # A user's log.showSignature would run gpg (configurable, may prompt) for every call.
    "--no-show-signature",
    # Only HEAD, local branches and tags, whatever log.excludeDecoration says; remote
    # refs ("origin/main") would otherwise be mistaken for branches.
    "--decorate-refs=HEAD",
    "--decorate-refs=refs/heads/",
    "--decorate-refs=refs/tags/",
    f"--format={_LOG_FORMAT}",
)


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"  # never ask for credentials on a terminal
    env["GIT_OPTIONAL_LOCKS"] = "0"  # read-only: don't take index.lock under a running build
    return env


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # Kill the whole process group: a wrapper script's children (e.g. `sleep`) would
    # otherwise keep running and keep the output pipe open.
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (OSError, ValueError):
        pass
    try:
        proc.wait(timeout=1.0)
    except (subprocess.TimeoutExpired, OSError):
        pass
    if proc.stdout is not None:
        try:
            proc.stdout.close()
        except OSError:
            pass


def _run_git(
    args: tuple[str, ...], cwd: str | os.PathLike[str] | None, timeout: float
) -> str | None:
    """stdout of a successful git call, or None (missing git, error, timeout)."""
    if timeout <= 0:
        return None
    try:
        proc = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_git_env(),
            start_new_session=os.name == "posix",
            # No console window flashing up for each call on Windows.
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except (OSError, ValueError, TypeError):
        return None  # git not installed / not executable, cwd missing
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException as exc:  # TimeoutExpired, KeyboardInterrupt: never leave git behind
        _kill(proc)
        if isinstance(exc, Exception):
            return None
        raise
    if proc.returncode != 0:
        return None
    return out.decode("utf-8", "replace")


def _natural_key(text: str) -> list[tuple[int, int | str]]:
    # v1.10 after v1.9: compare digit runs as numbers.
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text)]


def _parse_decorations(decorations: str) -> tuple[str | None, bool, list[str]]:
    """(branch, detached, tags) from a %D string like 'grafted, HEAD -> main, tag: v1'."""
    branch, detached, tags = None, True, []
    # Ref names cannot contain spaces, so ", " is an unambiguous separator.
    for item in decorations.split(", "):
        item = item.strip()
        if item.startswith("HEAD -> "):
            branch, detached = item[len("HEAD -> ") :].strip() or None, False
        elif item.startswith("tag: "):
            tag = item[len("tag: ") :].strip()
            if tag:
                tags.append(tag)
    return branch, detached, tags


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _strip_ref(value: str | None, prefix: str) -> str | None:
    if value and value.startswith(prefix):
        value = value[len(prefix) :]
    return value or None


def _ci_branch(environ: Mapping[str, str]) -> str | None:
    """The branch a CI checked out detached (PR source branch first), or None."""
    e = environ
    candidates = [
        _get(e, "GITHUB_HEAD_REF"),
        _get(e, "GITHUB_REF_NAME") if _get(e, "GITHUB_REF_TYPE") == "branch" else None,
        _get(e, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"),
        _get(e, "CI_COMMIT_BRANCH"),
        None if _get(e, "CI_COMMIT_TAG") else _get(e, "CI_COMMIT_REF_NAME"),
        _get(e, "CIRCLE_BRANCH"),
        _strip_ref(_get(e, "SYSTEM_PULLREQUEST_SOURCEBRANCH"), "refs/heads/"),
        _strip_ref(_get(e, "BUILD_SOURCEBRANCH"), "refs/heads/")
        if (_get(e, "BUILD_SOURCEBRANCH") or "").startswith("refs/heads/")
        else None,
        _get(e, "BITBUCKET_BRANCH"),
        None if _get(e, "BUILDKITE_TAG") else _get(e, "BUILDKITE_BRANCH"),
        _get(e, "TRAVIS_PULL_REQUEST_BRANCH"),
        None if _get(e, "TRAVIS_TAG") else _get(e, "TRAVIS_BRANCH"),
        _strip_ref(_get(e, "CODEBUILD_WEBHOOK_HEAD_REF"), "refs/heads/")
        if (_get(e, "CODEBUILD_WEBHOOK_HEAD_REF") or "").startswith("refs/heads/")
        else None,
        # Jenkins: multibranch PR source, multibranch branch, then the git plugin's
        # "origin/main". These generic names come last.
        _get(e, "CHANGE_BRANCH"),
        None if _get(e, "CHANGE_ID") or _get(e, "TAG_NAME") else _get(e, "BRANCH_NAME"),
        _strip_ref(_strip_ref(_get(e, "GIT_BRANCH"), "refs/heads/"), "origin/"),
    ]
    return next((c for c in candidates if c), None)


def _ci_tag(environ: Mapping[str, str]) -> str | None:
    """The tag a CI says it is building (covers shallow clones that lack the tag ref)."""
    e = environ
    source = _get(e, "BUILD_SOURCEBRANCH") or ""
    candidates = [
        _get(e, "GITHUB_REF_NAME") if _get(e, "GITHUB_REF_TYPE") == "tag" else None,
        _get(e, "CI_COMMIT_TAG"),
        _get(e, "CIRCLE_TAG"),
        source[len("refs/tags/") :] if source.startswith("refs/tags/") else None,
        _get(e, "BITBUCKET_TAG"),
        _get(e, "BUILDKITE_TAG"),
        _get(e, "TRAVIS_TAG"),
        _get(e, "TAG_NAME"),
    ]
    return next((c for c in candidates if c), None)


def git_info(
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 2.0,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str] | None:
    """``version_control`` for start build, or None when there is no commit to describe.

    Keys (only those with values): name ("git"), sha, branch, tag, commit_message,
    committer_name, committer_email. ``timeout`` bounds the whole call. When HEAD is
    detached (CI checkouts), the branch comes from the CI's variables in ``environ``
    (default ``os.environ``), or is left out.
    """
    try:
        env = os.environ if environ is None else environ
        out = _run_git(_LOG_ARGS, cwd, timeout)
        if not out:
            return None
        fields = out.split("\0", 4)
        if len(fields) < 5 or not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", fields[0].strip()):
            return None
        sha, committer, email, decorations, message = fields
        branch, detached, tags = _parse_decorations(decorations)
        if detached:
            branch = _ci_branch(env)
        tag = max(tags, key=_natural_key) if tags else _ci_tag(env)
        info = {
            "name": "git",
            "sha": sha.strip(),
            "branch": branch,
            "tag": tag,
            "commit_message": message.strip(),
            "committer_name": committer.strip(),
            "committer_email": email.strip(),
        }
        return {key: value for key, value in info.items() if value}
    except Exception:  # a reporter must never fail the run over git
        return None


def _may_be_in_repo(cwd: str | os.PathLike[str] | None) -> bool:
    """False only where git would surely answer "not a repository": no GIT_DIR and no
    .git here or in any parent directory.  Asking git costs a process start (a few ms of
    every run's start-up)."""
    if os.environ.get("GIT_DIR"):
        return True
    path = os.path.abspath(os.fspath(cwd) if cwd is not None else os.getcwd())
    while True:
        if os.path.lexists(os.path.join(path, ".git")):
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent


def repo_root(cwd: str | os.PathLike[str] | None = None, timeout: float = 2.0) -> str | None:
    """Absolute path of the work tree's top directory, or None (not a repo, no git, timeout)."""
    if not _may_be_in_repo(cwd):
        return None
    try:
        out = _run_git(("rev-parse", "--show-toplevel"), cwd, timeout)
        top = out.strip() if out else ""
        return os.path.normpath(os.path.abspath(top)) if top else None
    except Exception:
        return None


def _inside(path: str, root: str) -> str | None:
    rel = os.path.relpath(path, root)
    if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    if os.path.isabs(rel):
        return None
    return rel.replace(os.sep, "/")


def relative_to_repo(path: str | os.PathLike[str], root: str | None) -> str | None:
    """``path`` relative to ``root`` with "/" separators, or None if it lies outside."""
    if not root or not path:
        return None
    try:
        absolute = os.path.abspath(os.fspath(path))
        rel = _inside(absolute, os.path.abspath(root))
        if rel is None:
            # Symlinked checkouts (/tmp -> /private/tmp on macOS): compare real paths too.
            rel = _inside(os.path.realpath(absolute), os.path.realpath(root))
        return rel
    except (ValueError, OSError, TypeError):  # e.g. another drive on Windows
        return None
