"""The bodies of what ran: a test's finish (its steps' results and times, failures,
metadata), and the start and finish of each hook run.  Builds on TestDescriber
(description/scenarios.py), which tells what a test is.  Bodies come out as plain dicts,
times as epoch milliseconds; fitting them inside the API's limits happens at delivery.
Runs in behave's process.
"""

from __future__ import annotations

from ..base.clock import Clock, duration_ms
from ..description import mapping
from ..description.scenarios import TestDescriber


class Payloads(TestDescriber):
    def common_of(self, run) -> dict:
        """The test's name, scopes and tags, worked out when first asked for (by a hook, or
        when the start is described in full)."""
        if run.body_common is None:
            run.body_common = self.test_common(
                run.scenario, run.feature, mapping.rule_of(run.scenario)
            )
        return run.body_common

    def test_finish(self, run, end_ns: int, clock: Clock) -> tuple[dict, list]:
        """The finish draft and its compact step results (drafts.py)."""
        scenario = run.scenario
        steps, step_failures = self._steps(run, clock)
        failures = step_failures + [{"backtrace": lines} for lines in run.hook_failures]
        status_value = getattr(scenario, "status", None)
        result = run.forced_result or mapping.test_result_of(status_value)
        status = "passed" if result == "passed" else mapping.status_name(status_value)
        if run.cleanup_failures:
            failures.extend({"backtrace": lines} for lines in run.cleanup_failures)
            result = "failed"
        elif status == "cleanup_error":
            failures.append({"backtrace": cleanup_failure(scenario)})
        if failures and result != "failed" and run.hook_failures:
            result = "failed"  # a hook failed even though behave did not say so
        if result == "failed" and not failures:
            failures.append({"backtrace": [f"Scenario {status}"] + _message_lines(scenario)})
        body = {
            "result": result,
            "finished_at": clock.epoch_ms(end_ns),
            "duration_in_ms": max(1, duration_ms(run.start_ns, end_ns)),
        }
        if failures and result == "failed":
            body["failure"] = failures
        if run.metadata:
            body["custom_metadata"] = run.metadata
        environment = (
            {**self.environment, **run.environment} if run.environment else self.environment
        )
        if environment:
            body["environment"] = dict(environment)
        return body, steps

    def plain_pass(self, run) -> bool:
        """Is the test a pass that test_finish would describe with nothing more than its
        result, times and hook runs (drafts.passed_finish_line), its steps being
        journaled already (each passed)?"""
        return not (
            run.forced_result
            or run.hook_failures
            or run.cleanup_failures
            or run.step_hook_failures
            or run.metadata
            or run.environment
            or self.environment
            or run.passed_steps != len(run.steps)
            or mapping.test_result_of(getattr(run.scenario, "status", None)) != "passed"
        )

    def _steps(self, run, clock: Clock) -> tuple[list[list], list[dict]]:
        """[result, started_at, finished_at(, failure)] per step, and the test's failures."""
        steps, failures = [], []
        starts, ends = run.step_starts, run.step_ends
        offset = clock.epoch_offset_ns  # epoch_ms(), inlined: this runs for every step
        for index, step in enumerate(run.steps):
            start, end = starts.get(index), ends.get(index)
            if start is not None and end is not None:
                item = self.step_item(
                    run, index, step, (offset + start) // 1_000_000, (offset + end) // 1_000_000
                )
            else:
                item = self.step_item(run, index, step, None, None)
            if len(item) > 3:
                # The exception type and message first (README), the failed step last.
                failures.append(
                    {
                        "backtrace": [
                            *item[3].split("\n"),
                            f"Failed step: {step.keyword} {step.name}",
                        ]
                    }
                )
            steps.append(item)
        return steps, failures

    @staticmethod
    def step_item(run, index: int, step, started_at, finished_at) -> list:
        """[result, started_at, finished_at(, failure)] of one step of a test."""
        status = step.status
        result = mapping.step_result_of(status)
        item = [result, started_at, finished_at]
        hook_failures = run.step_hook_failures
        if result != "passed" or index in hook_failures:
            lines = hook_failures.get(index) or mapping.step_failure_lines(
                step, mapping.status_name(status)
            )
            if lines:
                if result == "passed":
                    item[0] = "failed"
                item.append("\n".join(lines))
        return item

    # -- hooks ------------------------------------------------------------------
    def hook_subject(self, name: str, args: tuple, test, feature) -> dict:
        """What a hook ran for: the name to show and the scopes to file it under."""
        target = args[0] if args else None
        if test is not None:
            common = self.common_of(test)
            scopes = common["scopes"]
            what = common["name"]
            if name.endswith("_step") and target is not None:
                what = f"{what} / {getattr(target, 'keyword', '')} {getattr(target, 'name', '')}"
            if name.endswith("_tag"):
                what = f"@{target} — {what}"
            return {"label": f"{name}: {what}", "scopes": scopes}
        if name.endswith("_all"):
            return {"label": name, "scopes": ["behave run"]}
        feature = target if name.endswith("_feature") and target is not None else feature
        file_name = self.file_name_of(feature) if feature is not None else "environment.py"
        scopes = mapping.scopes_of(None, feature, file_name)
        if name.endswith("_rule") and target is not None:
            scopes = scopes + [getattr(target, "name", "") or "Rule"]
            return {"label": f"{name}: {target.name}", "scopes": scopes}
        if name.endswith("_tag"):
            return {"label": f"{name}: @{target} — {scopes[0]}", "scopes": scopes}
        return {"label": f"{name}: {scopes[0]}", "scopes": scopes}

    def hook_start(self, name: str, func, subject: dict, test, started_at: str) -> dict:
        from .hookwatch import hook_location

        file_name, line = hook_location(func, self.cwd, self.root)
        body = {
            "hook_type": name,
            "name": subject["label"],
            "file_name": file_name,
            "location": f"{file_name}:{line}",
            "scopes": subject["scopes"],
            "started_at": started_at,
        }
        if test is not None:
            body["tags"] = self.common_of(test).get("tags", [])
        return body

    def hook_finish(self, record, end_ns: int, clock: Clock) -> dict:
        from .hookwatch import hook_location

        body = {
            "hook_type": record.name,
            "result": "failed" if record.failure else "passed",
            "finished_at": clock.epoch_ms(end_ns),
            "file_name": hook_location(record.func, self.cwd, self.root)[0],
            "scopes": record.subject["scopes"],
            "duration_in_ms": max(1, duration_ms(record.start_ns, end_ns)),
        }
        if record.failure:
            body["failure"] = [{"backtrace": record.failure}]
        return body


def cleanup_failure(scenario) -> list[str]:
    """behave leaves error_message empty for a failing context cleanup; its text is in
    the captured part named 'scenario.cleanup' (1.3)."""
    captured = getattr(scenario, "captured", None)
    for part in getattr(captured, "captures", None) or ():
        if "cleanup" in str(getattr(part, "name", "")):
            text = "\n".join(x for x in (part.stdout, part.stderr, part.log) if x)
            if text.strip():
                return [
                    "CLEANUP-ERROR: a context.add_cleanup() function raised"
                ] + text.splitlines()
    return ["CLEANUP-ERROR: a context.add_cleanup() function raised (no details captured)"]


def _message_lines(node) -> list[str]:
    message = getattr(node, "error_message", None)
    return str(message).splitlines() if message else []
