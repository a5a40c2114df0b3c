"""behave hooks for the demo shop suite.

Every hook does a little real work and prints or logs one line. None of them fails in a
normal run. Tests can make one fail on purpose:

  -D fail_hook=<hook name>   that hook raises RuntimeError("boom in <hook name>").
                             The scenario, step and tag hooks only raise for the one
                             scenario tagged @hook_target; before_all, after_all and the
                             feature and rule hooks raise every time they run.
  -D fail_cleanup=1          the @hook_target scenario registers a cleanup that raises.

Works with behave 1.2.6 and 1.3.x (1.2.6 never calls before_rule/after_rule).
"""

import logging
import os
import sys

# The domain module lives next to the step definitions.
_STEPS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps")
if _STEPS_DIR not in sys.path:
    sys.path.insert(0, _STEPS_DIR)

from cart import Cart, standard_inventory  # noqa: E402

log = logging.getLogger("shop.hooks")
TARGET_TAG = "hook_target"


def _fail_if_asked(context, hook: str) -> None:
    if context.config.userdata.get("fail_hook") == hook:
        raise RuntimeError(f"boom in {hook}")


def _is_target(scenario) -> bool:
    return scenario is not None and TARGET_TAG in scenario.tags


def _failing_cleanup() -> None:
    raise RuntimeError("boom in cleanup")


def before_all(context):
    context.stats = {"features": 0, "scenarios": 0, "steps": 0, "tags": set()}
    _fail_if_asked(context, "before_all")
    print("[before_all] shop suite starting")


def after_all(context):
    stats = context.stats
    print(
        f"[after_all] {stats['features']} features, {stats['scenarios']} scenarios, "
        f"{stats['steps']} steps"
    )
    _fail_if_asked(context, "after_all")


def before_feature(context, feature):
    context.stats["features"] += 1
    _fail_if_asked(context, "before_feature")
    print(f"[before_feature] {feature.name}")


def after_feature(context, feature):
    print(f"[after_feature] {feature.name}: {feature.status.name}")
    _fail_if_asked(context, "after_feature")


def before_rule(context, rule):
    _fail_if_asked(context, "before_rule")
    print(f"[before_rule] {rule.name}")


def after_rule(context, rule):
    print(f"[after_rule] {rule.name}")
    _fail_if_asked(context, "after_rule")


def before_scenario(context, scenario):
    # A fresh shop for every scenario keeps scenarios independent of each other.
    context.inventory = standard_inventory()
    context.cart = Cart(context.inventory)
    context.stats["scenarios"] += 1
    if _is_target(scenario):
        if context.config.userdata.get("fail_cleanup", "").lower() in ("1", "true", "yes"):
            context.add_cleanup(_failing_cleanup)
        _fail_if_asked(context, "before_scenario")
    print(f"[before_scenario] {scenario.name}")


def after_scenario(context, scenario):
    print(f"[after_scenario] {scenario.name}: {scenario.status.name}")
    if _is_target(scenario):
        _fail_if_asked(context, "after_scenario")


def before_step(context, step):
    context.stats["steps"] += 1
    log.debug("before_step: %s %s", step.keyword, step.name)
    if _is_target(context.scenario):
        _fail_if_asked(context, "before_step")


def after_step(context, step):
    log.debug("after_step: %s -> %s", step.name, step.status.name)
    if _is_target(context.scenario):
        _fail_if_asked(context, "after_step")


def before_tag(context, tag):
    context.stats["tags"].add(str(tag))
    log.debug("before_tag: @%s", tag)
    if tag == TARGET_TAG:
        _fail_if_asked(context, "before_tag")


def after_tag(context, tag):
    log.debug("after_tag: @%s", tag)
    if tag == TARGET_TAG:
        _fail_if_asked(context, "after_tag")
