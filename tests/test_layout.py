"""The package's shape (README, Development): subpackages that mirror the pipeline, imports
that point one way, no circles, modules of one job.  These tests keep the shape from
decaying silently: an import against the direction fails here with its file and line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "behave_bstack"

# What each part may import (besides itself).  The behave side and the journal never
# reach delivery; delivery never reaches the behave side; only the command (and tests)
# may import the command or the local server.
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "settings": {"base"},
    "origin": {"base", "settings"},
    "description": {"base", "settings"},
    "journal": {"base", "description"},
    "recording": {"base", "settings", "origin", "description", "journal"},
    "importing": {"base", "settings", "origin", "description", "journal"},
    "delivery": {"base", "journal"},
    "emulator": {"base"},
    "command": {
        "base",
        "settings",
        "origin",
        "description",
        "journal",
        "recording",
        "importing",
        "delivery",
        "emulator",
    },  # fmt: skip
    # The package's top: the public names, the formatter behave loads, `python -m`.
    "__init__": {"base", "recording", "formatter"},
    "formatter": {"recording"},
    "__main__": {"command"},
}

MAX_LINES = 600


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str:
    """behave_bstack.journal.store -> "journal"; behave_bstack -> "__init__"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path, package_dir: Path = PACKAGE) -> list[tuple[str, int]]:
    """(module of ours it imports, line): at module level and inside functions alike."""
    module = module_name(path, package_dir)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    # Imports under `if TYPE_CHECKING:` are for annotations only: never run, no circle.
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [
                (a.name, node.lineno) for a in node.names if a.name.startswith("behave_bstack")
            ]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("behave_bstack"):
                source = node.module
            else:
                continue
            for alias in node.names:  # `from . import store`: the module store
                candidate = f"{source}.{alias.name}"
                is_module = known(candidate, package_dir)
                found.append((candidate if is_module else source, node.lineno))
    return found


def known(module: str, package_dir: Path) -> bool:
    relative = package_dir.joinpath(*module.split(".")[1:])
    return relative.with_suffix(".py").exists() or (relative / "__init__.py").exists()


def all_modules(package_dir: Path = PACKAGE) -> list[Path]:
    return sorted(package_dir.rglob("*.py"))


def imports_against_the_direction(package_dir: Path) -> list[str]:
    against = []
    for path in all_modules(package_dir):
        here = part_of(module_name(path, package_dir))
        for target, line in imports_of(path, package_dir):
            there = part_of(target)
            if there != here and there not in ALLOWED.get(here, ()):
                rel = path.relative_to(package_dir).as_posix()
                against.append(f"{rel}:{line} imports {target} ({here} -> {there})")
    return against


def import_circles(package_dir: Path) -> list[str]:
    graph = {}
    for path in all_modules(package_dir):
        name = module_name(path, package_dir)
        graph[name] = sorted({t for t, _ in imports_of(path, package_dir) if t != name})
    circles: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(trail[trail.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return circles


def test_every_module_belongs_to_a_known_part():
    unknown = {part_of(module_name(p)) for p in all_modules()} - set(ALLOWED)
    assert not unknown, f"add the new part to ALLOWED (and the README's map): {unknown}"


def test_imports_point_one_way():
    assert imports_against_the_direction(PACKAGE) == []


def test_no_import_circles():
    assert import_circles(PACKAGE) == []


def test_the_checks_see_an_import_against_the_direction_and_a_circle(tmp_path):
    """The checks themselves, on a made-up package: a journal module importing delivery
    (lazily, inside a function), and two delivery modules importing each other."""
    fake = tmp_path / "behave_bstack"
    (fake / "journal").mkdir(parents=True)
    (fake / "delivery").mkdir()
    for init in ("__init__.py", "journal/__init__.py", "delivery/__init__.py"):
        (fake / init).write_text('"""x"""\n')
    (fake / "delivery" / "transport.py").write_text('"""x"""\n\nfrom . import routes\n')
    (fake / "delivery" / "routes.py").write_text('"""x"""\n\nfrom .transport import X\n')
    (fake / "journal" / "store.py").write_text(
        '"""x"""\n\n\ndef later():\n    from ..delivery import transport\n'
    )
    assert imports_against_the_direction(fake) == [
        "journal/store.py:5 imports behave_bstack.delivery.transport (journal -> delivery)"
    ]
    assert import_circles(fake) == [
        "behave_bstack.delivery.routes -> behave_bstack.delivery.transport"
        " -> behave_bstack.delivery.routes"
    ]


@pytest.mark.parametrize("path", all_modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_a_module_says_its_job_and_stays_small(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if path.name != "__main__.py":
        assert ast.get_docstring(tree), "a module docstring: its job and its process"
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{lines} lines: split it by concern"


def test_the_uploader_is_started_with_this_copy_of_the_package():
    from behave_bstack.recording.outbox import PACKAGE_PARENT

    assert (Path(PACKAGE_PARENT) / "behave_bstack" / "__init__.py").samefile(
        PACKAGE / "__init__.py"
    )
