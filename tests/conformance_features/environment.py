"""Hooks for the conformance features: a fresh memory per scenario, and @skip support."""


def before_scenario(context, scenario):
    context.remembered = []
    context.numbers = []
    if "skip" in scenario.effective_tags:
        scenario.skip("tagged @skip")
