"""Delivery benchmark (issue "Delivery"): prints figures, asserts nothing.

    python benchmarks/bench_delivery.py [--scenarios 2000] [--runs 5] [--big 20000]

Generates a suite of N scenarios x 5 steps plus a 1-step Background with trivial step
bodies, then runs behave as a whole process, side by side in one invocation:

  null      behave -f null                                  (the baseline)
  offline   behave -f bstack, no credentials (journal only)  target <= 1.10x null
  live      behave -f bstack against the local TRA server (its own process), every call
            delivered and acknowledged before behave exits   target <= 1.30x null
  latency   as live, the server adding 100 ms to every response: time until everything
            is delivered                                      target <= 20 s
  memory    --big scenarios: peak RSS of behave -f null, of behave -f bstack (live) and of
            the uploader process it starts                    target each <= null + 25 MiB

Medians of --runs runs, taken in turns whose order rotates.  Also prints the client CPU per delivered call (the uploader
process's user+system time divided by the calls the server recorded).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from procmem import HwmPoller  # noqa: E402

FORMATTER = "behave_bstack:BstackFormatter"

STEPS_PY = """
from behave import given, when, then

@given("a clean slate")
def _bg(context):
    pass

@given("a number {n:d}")
def _g(context, n):
    context.n = n

@when("I add {m:d}")
def _w(context, m):
    context.n += m

@then("the result is {r:d}")
def _t(context, r):
    assert context.n == r

@then("nothing else happens")
def _t2(context):
    pass
"""


def make_suite(root: Path, scenarios: int, per_feature: int = 100) -> Path:
    features = root / "features"
    (features / "steps").mkdir(parents=True, exist_ok=True)
    (features / "steps" / "steps.py").write_text(STEPS_PY)
    for f in range(0, scenarios, per_feature):
        lines = [
            f"Feature: Generated {f // per_feature}",
            "",
            "  Background:",
            "    Given a clean slate",
            "",
        ]
        for i in range(f, min(f + per_feature, scenarios)):
            lines += [
                f"  Scenario: Addition {i}",
                f"    Given a number {i}",
                "    When I add 1",
                f"    Then the result is {i + 1}",
                "    And nothing else happens",
                "    And nothing else happens",
                "",
            ]
        (features / f"gen_{f // per_feature:04d}.feature").write_text("\n".join(lines))
    return features


def start_server(latency_ms: int = 0) -> tuple[subprocess.Popen, str]:
    port_file = Path(tempfile.mkdtemp(prefix="bstack-port-")) / "port"  # not mktemp: a name
    # another account could take first, and answer with its own port
    cmd = [
        sys.executable,
        "-m",
        "behave_bstack.emulator",
        "--port",
        "0",
        "--user",
        "bench",
        "--key",
        "bench-key",
        "--port-file",
        str(port_file),
    ]
    if latency_ms:
        cmd += ["--latency-ms", str(latency_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if port_file.exists() and port_file.read_text().strip():
            break
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port_file.read_text().strip()}"
    return proc, url


def server_state(url: str) -> dict:
    with urllib.request.urlopen(url + "/_emulator/state") as resp:
        return json.load(resp)


def reset(url: str) -> None:
    urllib.request.urlopen(
        urllib.request.Request(url + "/_emulator/reset", method="POST", data=b"{}")
    )


def run_behave(workdir: Path, fmt: str, env_extra: dict, extra_args: tuple = ()) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROWSERSTACK_", "BSTACK_"))}
    env.update(env_extra)
    env["BSTACK_JOURNAL_DIR"] = str(workdir / "journal")
    cmd = [sys.executable, "-m", "behave", "-f", fmt, *extra_args, "--no-summary", "--no-snippets"]
    cmd.append("features")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": elapsed,
        "rc": proc.returncode,
        "stderr": proc.stderr.decode(errors="replace"),
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    }


def peak_rss_mib(workdir: Path, fmt: str, env_extra: dict) -> tuple[float, float | None]:
    """Peak RSS of behave and (if started) of the uploader: VmHWM, polled (procmem.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROWSERSTACK_", "BSTACK_"))}
    env.update(env_extra)
    env["BSTACK_JOURNAL_DIR"] = str(workdir / "journal")
    cmd = [sys.executable, "-m", "behave", "-f", fmt, "--no-summary", "--no-snippets", "features"]
    proc = subprocess.Popen(
        cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    poller = HwmPoller(proc.pid)
    proc.wait()
    return poller.stop()


def latest_report(journal_dir: Path) -> dict | None:
    runs = sorted(journal_dir.glob("*/report.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(runs[-1].read_text()) if runs else None


def ratio_line(name: str, values: list[float], base: float, target: str) -> str:
    med = statistics.median(values)
    return (
        f"  {name:<8} median {med:6.2f} s  = {med / base:5.2f}x null   (target {target})  runs: "
        + ", ".join(f"{v:.2f}" for v in values)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--big", type=int, default=20000, help="scenarios for the memory run (0: skip)"
    )
    parser.add_argument(
        "--per-feature", type=int, default=100, help="scenarios per generated feature file"
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-rate-limit", action="store_true")
    args = parser.parse_args()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    # pip compiles a package's bytecode when it installs it; an editable install (and
    # PYTHONDONTWRITEBYTECODE) leaves every run compiling our modules again (~30 ms).
    compileall.compile_dir(str(ROOT / "behave_bstack"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="bstack-bench-") as tmp:
        work = Path(tmp)
        make_suite(work, args.scenarios, args.per_feature)
        server, url = start_server()
        live_env = {
            "BROWSERSTACK_USERNAME": "bench",
            "BROWSERSTACK_ACCESS_KEY": "bench-key",
            "BROWSERSTACK_API_URL": url,
            "BSTACK_FLUSH_TIMEOUT": "120",
        }
        times = {"null": [], "json": [], "offline": [], "live": []}
        cpu = {"null": [], "offline": []}
        json_args = ("-o", str(work / "out.json"))
        calls, uploader_cpu = [], []
        try:
            run_behave(work, "null", {})  # warm the file cache
            kinds = ["null", "offline", "json", "live"]
            for turn in range(args.runs):
                # The order rotates, so that no kind always runs right after the same one
                # (the live run leaves the server and the uploader's work just finished).
                for name in kinds[turn % 4 :] + kinds[: turn % 4]:
                    if name in ("null", "offline"):
                        result = run_behave(work, "null" if name == "null" else FORMATTER, {})
                        times[name].append(result["seconds"])
                        cpu[name].append(result["cpu"])
                    elif name == "json":
                        times["json"].append(run_behave(work, "json", {}, json_args)["seconds"])
                    else:
                        reset(url)
                        live = run_behave(work, FORMATTER, live_env)
                        times["live"].append(live["seconds"])
                        calls.append(server_state(url)["calls"])
                        if "reported" not in live["stderr"]:
                            print(live["stderr"])
                        report = latest_report(work / "journal")
                        uploader_cpu.append((report or {}).get("cpu_seconds", 0.0))
        finally:
            server.terminate()
            server.wait()
        base = statistics.median(times["null"])
        print(
            f"suite: {args.scenarios} scenarios x 5 steps + 1-step Background, "
            f"{args.per_feature} per feature file; medians of {args.runs}"
        )
        print(ratio_line("null", times["null"], base, "-"))
        print(ratio_line("json", times["json"], base, "reference: 1.02x in design.md"))
        print(ratio_line("offline", times["offline"], base, "<= 1.10x"))
        print(
            "  offline CPU time (user+system) / null's: "
            f"{statistics.median(cpu['offline']) / statistics.median(cpu['null']):.2f}x"
        )
        print(ratio_line("live", times["live"], base, "<= 1.30x"))
        print(f"  live: calls recorded by the server per run: {calls}")
        # The targets are ratios of medians (above).  On a shared VM whose speed drifts
        # between runs, the ratio within each turn (the kinds ran back to back) is steadier:
        paired = {
            name: statistics.median(v / n for v, n in zip(times[name], times["null"], strict=True))
            for name in ("json", "offline", "live")
        }
        print(
            "  for comparison, median of the per-turn ratios to null: "
            + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in paired.items())
        )
        print(
            f"  client CPU per delivered call (uploader process CPU / calls): "
            f"{statistics.median(uploader_cpu) / max(1, statistics.median(calls)) * 1000:.3f} ms"
        )

        if not args.skip_latency:
            server, url = start_server(latency_ms=100)
            try:
                env = {**live_env, "BROWSERSTACK_API_URL": url}
                result = run_behave(work, FORMATTER, env)
                state = server_state(url)
                print(
                    f"  latency: 100 ms per response: behave exited after {result['seconds']:.1f} s with "
                    f"{state['calls']} calls delivered (target: everything within 20 s)"
                )
                print(
                    "    " + " / ".join(line.strip() for line in result["stderr"].splitlines()[:3])
                )
            finally:
                server.terminate()
                server.wait()

        if not args.skip_rate_limit:
            # BrowserStack's documented per-IP limit: every call must still arrive once.
            server, url = start_server()
            try:
                body = json.dumps({"rate_limit": {"rps": 160}}).encode()
                urllib.request.urlopen(
                    urllib.request.Request(
                        url + "/_emulator/faults",
                        data=body,
                        method="POST",
                        headers={"Content-Type": "application/json"},
                    )
                )
                env = {**live_env, "BROWSERSTACK_API_URL": url}
                result = run_behave(work, FORMATTER, env)
                state = server_state(url)
                tests = (
                    state["tests"].values() if isinstance(state["tests"], dict) else state["tests"]
                )
                once = all(t["finish_count"] == 1 for t in tests)
                print(
                    f"  rate limit 160/s: behave exited after {result['seconds']:.1f} s; "
                    f"{len(tests)} tests on the server, each finished once: {once}; "
                    f"calls incl. 429s: {state['calls']}"
                )
            finally:
                server.terminate()
                server.wait()

        if args.big:
            big = work / "big"
            make_suite(big, args.big)
            server, url = start_server()
            try:
                env = {**live_env, "BROWSERSTACK_API_URL": url}
                null_rss, _ = peak_rss_mib(big, "null", {})
                live_rss, uploader_rss = peak_rss_mib(big, FORMATTER, env)
                print(
                    f"  memory ({args.big} scenarios): -f null {null_rss:.0f} MiB; -f bstack {live_rss:.0f} MiB "
                    f"(+{live_rss - null_rss:.0f}); uploader {uploader_rss if uploader_rss is None else round(uploader_rss)} MiB "
                    f"(target each <= {null_rss + 25:.0f} MiB)"
                )
            finally:
                server.terminate()
                server.wait()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
