"""Seeing environment.py hooks, which behave never tells a formatter about.

behave keeps the user's hooks in `runner.hooks` (a dict filled from environment.py) and
calls them through it.  We replace each hook the user defined with a thin wrapper that
reads the clock before and after, notes an exception, and re-raises it unchanged, so
behave's own handling (statuses, HOOK-ERROR messages, aborts) is exactly what it would
have been.  The runner is found by walking up the stack from the formatter's constructor:
behave builds formatters inside Runner.run_with_paths(), after load_hooks() and before
before_all, in 1.2.6 and 1.3.x alike (and so does behavex in its worker processes).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable

HOOK_NAMES = (
    "before_all",
    "after_all",
    "before_feature",
    "after_feature",
    "before_rule",
    "after_rule",
    "before_scenario",
    "after_scenario",
    "before_step",
    "after_step",
    "before_tag",
    "after_tag",
)


def find_runner(max_depth: int = 30):
    """The behave runner that is constructing us, or None."""
    try:
        from behave.runner import ModelRunner
    except ImportError:  # pragma: no cover - behave is a dependency
        return None
    frame = sys._getframe(1)
    depth = 0
    while frame is not None and depth < max_depth:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, ModelRunner):
            return candidate
        frame = frame.f_back
        depth += 1
    return None


def user_hooks(runner) -> dict[str, Callable]:
    """The hooks the user defined (behave adds a default before_all of its own)."""
    hooks = getattr(runner, "hooks", None) or {}
    found = {}
    for name in HOOK_NAMES:
        func = hooks.get(name)
        if not callable(func):
            continue
        if getattr(func, "__self__", None) is runner:  # behave's before_all_default_hook
            continue
        if getattr(func, "__bstack_wrapped__", False):
            continue
        found[name] = func
    return found


def hook_location(func, cwd: str, root: str | None = None) -> tuple[str, int]:
    from ..description.mapping import relative_path

    target = inspect.unwrap(func)
    code = getattr(target, "__code__", None)
    filename = getattr(code, "co_filename", None) or "environment.py"
    line = getattr(code, "co_firstlineno", 0) or 0
    return relative_path(filename, cwd, root), line


def install(runner, on_call: Callable) -> list[str]:
    """Wrap every user hook.  `on_call(name, func, args, run)` must call `run()` exactly
    once and return its result; `run()` re-raises whatever the hook raised."""
    installed = []
    for name, func in user_hooks(runner).items():
        runner.hooks[name] = _wrap(name, func, on_call)
        installed.append(name)
    return installed


def _wrap(name: str, func: Callable, on_call: Callable) -> Callable:
    @functools.wraps(func)  # keeps .capture / .show_capture_on_success that behave reads
    def hook(context, *args):
        return on_call(name, func, args, lambda: func(context, *args))

    hook.__bstack_wrapped__ = True
    return hook


def watch_cleanups(runner, on_error: Callable) -> bool:
    """Hear about failing context.add_cleanup() functions.  behave 1.3 keeps only captured
    text of them and 1.2.6 prints them to stdout, so the exception itself is taken here,
    from behave's on_cleanup_error handler (looked up on the context in both versions),
    before behave's own handler runs as usual."""
    context = getattr(runner, "context", None)
    setter = getattr(context, "_set_root_attribute", None)
    if context is None or setter is None:
        return False
    try:
        previous = context.on_cleanup_error
    except AttributeError:
        previous = type(context).print_cleanup_error

    def on_cleanup_error(ctx, cleanup_func, exception):
        try:
            on_error(cleanup_func, exception)
        finally:
            previous(ctx, cleanup_func, exception)

    setter("on_cleanup_error", on_cleanup_error)
    return True


def wrap_scenario_runs(
    on_enter: Callable, on_leave: Callable, on_error: Callable[[Exception], None]
) -> Callable[[], None]:
    """See every scenario's exact start and end: behave's Scenario.run is replaced, for
    the run, by one that calls on_enter(scenario, runner) before and on_leave(scenario)
    after it (after after_scenario and the context cleanups, with the final status).  One
    class attribute instead of a wrapper per scenario object: no memory per scenario, and
    outline rows that a hook rebuilds are covered too.  An exception from on_enter or
    on_leave goes to on_error, never to behave (guarded here, without a frame more per
    call: this runs for every scenario).  Returns the function that undoes it."""
    from behave.model import Scenario

    original = Scenario.__dict__["run"]

    def run(self, runner, *args, **kwargs):
        try:
            on_enter(self, runner)
        except Exception as exc:  # noqa: BLE001
            on_error(exc)
        try:
            return original(self, runner, *args, **kwargs)
        finally:
            try:
                on_leave(self)
            except Exception as exc:  # noqa: BLE001
                on_error(exc)

    run.__wrapped__ = original
    Scenario.run = run

    def undo() -> None:
        if Scenario.__dict__.get("run") is run:
            Scenario.run = original

    return undo
