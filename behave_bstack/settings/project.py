"""The project root: what a run's identities and default names are relative to.

Runs in behave's process and in the command.  The same suite run from the project's top
directory or from a directory inside it (`cd features && behave`) must report the same
tests (file_name, location), into the same default project and build, with one journal
location.  So paths are not taken relative to the working directory but to the project
root: the nearest directory, from the working directory upwards, that holds a behave
configuration file, a browserstack.yml or a git work tree's .git (the home directory
and the file system's root are never taken: ~/.behaverc is behave's per-user file).  When
there is none, the working directory is the root, or its parent when the working directory
is the features directory itself (it holds steps/ or environment.py, behave's markers).
"""

from __future__ import annotations

import os

MARKERS = (
    "behave.ini",
    ".behaverc",
    "setup.cfg",
    "tox.ini",
    "pyproject.toml",
    "browserstack.yml",
    "browserstack.yaml",
    ".git",
)
FEATURES_DIR_MARKERS = ("steps", "environment.py")
MAX_LEVELS = 32


def project_root(cwd: str, home: str | None = None) -> str:
    """The project root for a run started in `cwd` (an absolute path)."""
    start = os.path.abspath(cwd)
    home = os.path.abspath(home if home is not None else os.path.expanduser("~"))
    folder = start
    for _ in range(MAX_LEVELS):
        parent = os.path.dirname(folder)
        if folder == parent or folder == home:
            break
        if any(os.path.exists(os.path.join(folder, marker)) for marker in MARKERS):
            return folder
        folder = parent
    if any(os.path.exists(os.path.join(start, m)) for m in FEATURES_DIR_MARKERS):
        parent = os.path.dirname(start)
        if parent != start and parent != home:
            return parent
    return start


def prefix_of(cwd: str, root: str) -> str:
    """The working directory as a prefix of root-relative paths: "" at the root,
    "features/" below it ("/" separators)."""
    rel = os.path.relpath(os.path.abspath(cwd), root)
    if rel == os.curdir or rel.startswith(os.pardir):
        return ""
    return rel.replace(os.sep, "/") + "/"
