"""Pure mapping from behave's model objects to the pieces of TRA payloads.

Works by duck typing on behave 1.2.6 and 1.3.x objects; nothing here imports behave.

Results (for tests and for steps; see the README table):

    behave status                                   TRA result
    passed                                          passed
    failed, error, hook_error, cleanup_error,       failed
    undefined, pending, executing, unknown
    skipped, untested, untested_pending,            skipped
    untested_undefined
    pending_warn (pending step under @wip)          passed for a test (behave counts it as
                                                    passed), skipped for the step itself
    xfailed / xpassed (reserved in 1.3)             passed / failed
    anything else (a future status)                 failed — never passed

behave has no notion of a timeout, so "timeout" is never produced.
"""

from __future__ import annotations

import bisect
import enum
import os
import traceback

METADATA_TAG = "bstack."  # @bstack.owner=alice -> custom_metadata {"owner": ["alice"]}

TEST_RESULTS = {
    "passed": "passed",
    "xfailed": "passed",
    "pending_warn": "passed",
    "skipped": "skipped",
    "untested": "skipped",
    "untested_pending": "skipped",
    "untested_undefined": "skipped",
}
STEP_RESULTS = {**TEST_RESULTS, "pending_warn": "skipped"}


def status_name(status) -> str:
    """'passed', 'hook_error', ... from a Status enum member, or a plain string."""
    name = getattr(status, "name", None)
    return str(name if name is not None else status or "unknown")


def test_result(status) -> str:
    return TEST_RESULTS.get(status_name(status), "failed")


def step_result(status) -> str:
    return STEP_RESULTS.get(status_name(status), "failed")


# step_result() and test_result() run for every step and test: behave's statuses are enum
# members (singletons, never freed), so answers are kept by identity; anything else (a
# plain string) is looked up each time.
def _kept_by_identity(compute):
    answers: dict[int, str] = {}

    def lookup(status) -> str:
        found = answers.get(id(status))
        if found is None:
            found = compute(status)
            if isinstance(status, enum.Enum):
                answers[id(status)] = found
        return found

    return lookup


step_result_of = _kept_by_identity(step_result)
test_result_of = _kept_by_identity(test_result)


# -- identity -------------------------------------------------------------------


def repo_path(absolute: str, repo_root: str | None) -> str | None:
    """An absolute path relative to the repository's root, with POSIX separators; None
    outside the repository (or without one)."""
    if not repo_root:
        return None
    try:
        below = os.path.relpath(absolute, repo_root)
    except ValueError:  # Windows: another drive than the repository's
        return None
    return None if below.startswith("..") else below.replace(os.sep, "/")


def relative_path(path: str, cwd: str, root: str | None = None) -> str:
    """A path (relative ones are relative to cwd) relative to root (default: cwd) when it
    lies below it, with POSIX separators; else absolute."""
    absolute = os.path.abspath(os.path.join(cwd, path))
    try:
        rel = os.path.relpath(absolute, root or cwd)
    except ValueError:  # another drive on Windows
        rel = absolute
    if rel.startswith(".."):
        rel = absolute
    return rel.replace(os.sep, "/")


def rule_of(scenario):
    """The Rule a scenario (or outline row) belongs to, if any."""
    node = getattr(scenario, "parent", None)
    while node is not None:
        if type(node).__name__ == "Rule":
            return node
        node = getattr(node, "parent", None)
    return None


def scopes_of(scenario, feature, file_name: str) -> list[str]:
    names = [getattr(feature, "name", "") or ""]
    rule = rule_of(scenario)
    if rule is not None:
        names.append(rule.name or "Rule")
    names = [n for n in names if n.strip()]
    return names or [os.path.splitext(os.path.basename(file_name))[0] or file_name]


def tags_of(scenario, feature) -> list[str]:
    """Feature, rule and scenario tags (an outline row's include its outline's and its
    Examples' tags), in that order, without the @ and without repeats."""
    return add_tags(container_tags(feature, rule_of(scenario)), getattr(scenario, "tags", ()))


def container_tags(feature, rule) -> list[str]:
    """The tags every scenario of a feature (and rule) inherits."""
    rule_tags = getattr(rule, "tags", ()) if rule is not None else ()
    return add_tags(add_tags([], getattr(feature, "tags", ())), rule_tags)


def add_tags(tags: list[str], more) -> list[str]:
    for tag in more or ():
        tag = str(tag)
        if tag not in tags:
            tags.append(tag)
    return tags


class StepLines:
    """The line of every step the feature file gives a scenario, in order: its
    Background's (a Rule's Background with the Feature's it inherits) and its own.  This
    is what the journal's reader rebuilds from the file (catalog.py); a hook that changes
    the model at run time (use_background, use_inheritance, steps added) makes the steps
    behave runs differ from it.  Read from the raw lists: asking for scenario.all_steps
    would make behave copy (and keep) the Background steps before its hooks ran.  One per
    feature: a Background's lines are worked out once."""

    def __init__(self) -> None:
        self._backgrounds: dict[int, list] = {}

    def of(self, scenario) -> list:
        background = getattr(scenario, "background", None)
        if background is None:
            return [step.line for step in getattr(scenario, "steps", None) or ()]
        lines = self._backgrounds.get(id(background))
        if lines is None:
            lines = self._backgrounds[id(background)] = _background_lines(background)
        return lines + [step.line for step in getattr(scenario, "steps", None) or ()]


def _background_lines(background, depth: int = 0) -> list:
    if background is None or depth > 3:
        return []
    inherited = _background_lines(getattr(background, "inherited_background", None), depth + 1)
    return inherited + [step.line for step in getattr(background, "steps", None) or ()]


def outline_row(scenario) -> dict[str, str] | None:
    row = getattr(scenario, "_row", None)
    if row is None:
        return None
    try:
        return {str(k): str(v) for k, v in zip(row.headings, row.cells, strict=False)}
    except (AttributeError, TypeError):
        return None


# -- Gherkin text ---------------------------------------------------------------


def table_cell(value) -> str:
    """A cell as Gherkin writes it: a pipe, backslash or newline in it escaped, so that
    `a | b` stays one cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", "\\n")


def step_argument_lines(step, indent: str = "  ") -> list[str]:
    lines: list[str] = []
    table = getattr(step, "table", None)
    if table is not None:
        rows = [list(table.headings)] + [list(row.cells) for row in table.rows]
        rows = [[table_cell(c) for c in row] for row in rows]
        columns = max((len(r) for r in rows), default=0)
        widths = [max((len(r[i]) for r in rows if i < len(r)), default=0) for i in range(columns)]
        for row in rows:
            cells = [c.ljust(widths[i]) for i, c in enumerate(row)]
            lines.append(indent + "| " + " | ".join(cells) + " |")
    text = getattr(step, "text", None)
    if text is not None:
        # split("\n"), not splitlines(): a U+2028 inside a line is content, not a break
        body = str(text).replace('"""', '\\"\\"\\"').split("\n")
        lines.append(indent + '"""')
        lines.extend(indent + line for line in body)
        lines.append(indent + '"""')
    return lines


def step_text(step) -> str:
    """The step text with placeholders filled, and its doc string or table in Gherkin form."""
    name = str(getattr(step, "name", ""))
    if getattr(step, "table", None) is None and getattr(step, "text", None) is None:
        return name  # most steps: no argument lines to build
    extra = step_argument_lines(step)
    return name + ("\n" + "\n".join(extra) if extra else "")


class GherkinSource:
    """The scenario's Gherkin as written in its file: its Background(s), tags, steps,
    tables, doc strings and comments; for an outline row, the whole outline plus a line with
    the row's values.  Read once per feature file and sliced by the model's line numbers;
    anything the file does not give back (an unreadable file) is rebuilt from the model.

    code_parts() names line ranges of the file instead of copying them: the file's lines
    are journaled once (drafts.py), and each scenario's code is rebuilt from them."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[str, list[str], list[int]]] = {}
        self._ranges: dict[tuple[str, int], list | None] = {}
        self._read = 0

    def index_feature(
        self, feature, lines: list[str] | None = None
    ) -> tuple[str, list[str]] | None:
        """Read the feature's file (or take its `lines`, when the journal's reader rebuilds
        it); what earlier features kept is let go (memory stays flat however many features a
        run has).  Returns (key, lines) when the file was read now, for the caller to
        journal."""
        filename = str(getattr(feature, "filename", "") or "")
        if not filename or filename in self._files:
            return None
        self._files, self._ranges = {}, {}
        if lines is None:
            try:
                with open(filename, "rb") as handle:  # bytes, decoded at once: cheaper
                    lines = handle.read().decode("utf-8-sig").splitlines()
            except (OSError, UnicodeDecodeError):
                return None
        starts = set()
        stack = [feature]
        while stack:
            node = stack.pop()
            background = getattr(node, "background", None)
            if background is not None and getattr(background, "line", None):
                starts.add(background.line)
            for item in getattr(node, "run_items", None) or getattr(node, "scenarios", None) or ():
                if getattr(item, "line", None):
                    starts.add(item.line)
                if type(item).__name__ == "Rule":
                    stack.append(item)
        self._read += 1
        key = f"s{self._read}"
        self._files[filename] = (key, lines, sorted(starts))
        return key, lines

    def key_of(self, filename: str) -> str | None:
        """The journal's key for the lines of this file, if they are the ones kept."""
        known = self._files.get(filename)
        return known[0] if known is not None else None

    def _range(self, filename: str, line: int, keep: bool = True) -> list | None:
        """[source key, first index, end index] of the block starting at `line`."""
        cache_key = (filename, line)
        if cache_key in self._ranges:
            return self._ranges[cache_key]
        known = self._files.get(filename)
        if known is None or not line:
            return None
        key, lines, starts = known
        begin = line - 1
        while begin > 0 and lines[begin - 1].lstrip().startswith("@"):
            begin -= 1  # the block's tags
        after = bisect.bisect_right(starts, line)
        end = (starts[after] - 1) if after < len(starts) else len(lines)
        while end > begin and lines[end - 1].lstrip().startswith("@"):
            end -= 1  # the next block's tags
        while end > begin and not lines[end - 1].strip():
            end -= 1
        found = [key, begin, end]
        if keep:  # backgrounds and outlines are asked for again; a scenario only once
            self._ranges[cache_key] = found
        return found

    def code_parts(self, scenario, rule) -> list:
        """Text pieces and line ranges that, joined by newlines, are the scenario's code
        (`rule`: the scenario's Rule or None, see rule_of)."""
        filename = str(getattr(scenario, "filename", "") or "")
        template = getattr(scenario, "parent", None)
        row = outline_row(scenario)
        if row is not None and type(template).__name__ != "ScenarioOutline":
            template = None
        if row is not None:
            own = self._range(filename, getattr(template, "line", 0))
        else:
            own = self._range(filename, getattr(scenario, "line", 0), keep=False)
        if own is None or (row is not None and template is None):
            return [gherkin_code(scenario)]
        parts: list = []
        for container in (getattr(scenario, "feature", None), rule):
            background = getattr(container, "background", None)
            if background is not None:
                found = self._range(filename, getattr(background, "line", 0))
                if found and found[2] > found[1]:
                    parts.append(found)
        if row is not None:
            parts.append("# Examples row: " + ", ".join(f"{k}={v}" for k, v in row.items()))
        parts.append(own)
        return parts

    def code(self, scenario) -> str:
        sources = {key: lines for key, lines, _ in self._files.values()}
        return render_code(self.code_parts(scenario, rule_of(scenario)), sources)


def render_code(parts: list, sources: dict[str, list[str]]) -> str:
    """The scenario's Gherkin from its pieces; lines of an unknown source read as empty."""
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, list) and len(part) == 3:
            lines = sources.get(part[0]) or []
            out.append("\n".join(lines[part[1] : part[2]]))
    return "\n".join(out)


def gherkin_code(scenario) -> str:
    """The scenario rebuilt from behave's model (when its file cannot be read)."""
    lines: list[str] = []
    tags = getattr(scenario, "tags", ())
    if tags:
        lines.append(" ".join("@" + str(t) for t in tags))
    lines.append(f"{getattr(scenario, 'keyword', 'Scenario')}: {getattr(scenario, 'name', '')}")
    row = outline_row(scenario)
    if row:
        lines.append("  # Examples row: " + ", ".join(f"{k}={v}" for k, v in row.items()))
    background = list(getattr(scenario, "background_steps", None) or ())
    if background:
        lines.append("  # Background:")
        for step in background:
            lines.append(f"  {step.keyword} {step.name}")
            lines.extend(step_argument_lines(step, "    "))
    for step in getattr(scenario, "steps", ()):
        lines.append(f"  {step.keyword} {step.name}")
        lines.extend(step_argument_lines(step, "    "))
    return "\n".join(lines)


# -- failures -------------------------------------------------------------------


def describe_exception(exc: BaseException | None, tb=None) -> list[str]:
    """Type and message first, then the frames (user frames included)."""
    if exc is None:
        return []
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - an exception whose __str__ raises
        message = "<unprintable message>"
    head = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    tb = tb if tb is not None else getattr(exc, "__traceback__", None)
    frames: list[str] = []
    if tb is not None:
        try:
            summary = traceback.extract_tb(tb)
            # Our hook wrapper sits between behave and the user's hook: its frames are
            # noise that would make the reporter look guilty (kept if they are all there is).
            user = [f for f in summary if not _own_file(f.filename)]
            for chunk in traceback.format_list(user or summary):
                frames.extend(chunk.rstrip("\n").split("\n"))
        except Exception:  # noqa: BLE001 - formatting must never break reporting
            frames.append("<traceback unavailable>")
    return head.split("\n") + frames


# The package root (this file is in behave_bstack/description/).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _own_file(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE_DIR)


def step_failure_lines(step, status: str | None = None) -> list[str]:
    """What went wrong in a step, as backtrace lines (empty when nothing did)."""
    status = status or status_name(getattr(step, "status", None))
    if status in ("passed", "skipped", "untested"):
        return []
    if status == "undefined":
        return [
            f"Undefined step: {step.keyword} {step.name}",
            "No step definition matches this text.",
        ]
    exc = getattr(step, "exception", None)
    if exc is not None:
        lines = describe_exception(exc, getattr(step, "exc_traceback", None))
        if getattr(step, "hook_failed", False):
            lines[0] = "HOOK-ERROR in before_step/after_step: " + lines[0]
        return lines
    message = getattr(step, "error_message", None)
    if message:
        return str(message).split("\n")
    if test_result(status) == "failed":
        return [f"Step {status}"]
    return []
