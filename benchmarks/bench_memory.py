"""Memory benchmark (issue #22, "the uploader's memory must not grow with the run").

    python benchmarks/bench_memory.py [--scenarios 10000 30000 100000] [--per-feature 2000]

Not part of CI: 100,000 scenarios take several minutes.  For each size it generates a
suite (2,000 scenarios per feature file, 5 trivial steps and a 1-step Background each,
bench_delivery.make_suite) and measures, each in its own process:

  null      behave -f null: peak RSS (the baseline)
  live      behave -f bstack against the local TRA server: behave's peak RSS, and the
            peak of the uploader it starts (VmHWM, polled from /proc while it runs)
  offline   behave -f bstack without credentials: its peak RSS, and the journal it leaves
  upload    `behave-bstack upload latest` of that journal to a fresh local server: peak
            RSS, wall time, calls delivered per second

Targets: upload peak at 100,000 scenarios <= 64 MiB and within 10 MiB of its peak at
10,000; behave -f bstack within 10 MiB of -f null.  Prints figures, asserts nothing.
Linux only (/proc).
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench_delivery import (  # noqa: E402
    FORMATTER,
    make_suite,
    server_state,
    start_server,
)
from procmem import HwmPoller  # noqa: E402

MIB = 1024 * 1024


def clean_env(extra: dict, journal_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROWSERSTACK_", "BSTACK_"))}
    env.update(extra)
    env["BSTACK_JOURNAL_DIR"] = str(journal_dir)
    env["BSTACK_FLUSH_TIMEOUT"] = "900"  # a big run's uploader may lag: let it finish
    return env


def run_measured(cmd: list[str], cwd: Path, env: dict) -> dict:
    """Run to its end; its peak RSS, its children's and its wall time."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    poller = HwmPoller(proc.pid)
    stderr = proc.stderr.read()  # until it exits (a child that keeps the pipe: longer)
    proc.wait()
    wall = time.perf_counter() - start
    peak, children = poller.stop()
    return {
        "peak": peak,
        "wall": wall,
        "rc": proc.returncode,
        "stderr": stderr.decode(errors="replace"),
        "children": children,
    }


def behave_cmd(fmt: str) -> list[str]:
    return [sys.executable, "-m", "behave", "-f", fmt, "--no-summary", "--no-snippets", "features"]


def measure(size: int, per_feature: int, work: Path, live: bool) -> dict:
    suite = work / f"s{size}"
    make_suite(suite, size, per_feature)
    row: dict = {"scenarios": size}
    null = run_measured(behave_cmd("null"), suite, clean_env({}, suite / "journal-null"))
    row["null"] = null["peak"]
    row["null_wall"] = null["wall"]
    creds = {"BROWSERSTACK_USERNAME": "bench", "BROWSERSTACK_ACCESS_KEY": "bench-key"}
    if live:
        server, url = start_server()
        try:
            env = clean_env({**creds, "BROWSERSTACK_API_URL": url}, suite / "journal-live")
            result = run_measured(behave_cmd(FORMATTER), suite, env)
            row["live"] = result["peak"]
            row["live_wall"] = result["wall"]
            row["live_uploader"] = result["children"]
            row["live_calls"] = server_state(url)["calls"]
        finally:
            server.terminate()
            server.wait()
    offline = run_measured(behave_cmd(FORMATTER), suite, clean_env({}, suite / "journal"))
    row["offline"] = offline["peak"]
    row["journal_mib"] = sum(p.stat().st_size for p in (suite / "journal").rglob("*.jsonl")) / MIB
    server, url = start_server()
    try:
        env = clean_env({**creds, "BROWSERSTACK_API_URL": url}, suite / "journal")
        cmd = [sys.executable, "-m", "behave_bstack", "upload", "latest", "--timeout", "3600"]
        result = run_measured(cmd, suite, env)
        calls = server_state(url)["calls"]
        row.update(upload=result["peak"], upload_wall=result["wall"], upload_calls=calls)
        if result["rc"] != 0:
            print(f"  upload exited {result['rc']}: {result['stderr'][-500:]}")
    finally:
        server.terminate()
        server.wait()
    return row


def show(row: dict) -> str:
    def mib(value) -> str:
        return "-" if value is None else f"{value:.0f} MiB"

    live = "-"
    if "live" in row:
        live = f"{mib(row['live'])} (+{row['live'] - row['null']:.0f})"
    rate = row["upload_calls"] / row["upload_wall"] if row["upload_wall"] else 0
    return (
        f"| {row['scenarios']:,} | {mib(row['null'])} | {live} | "
        f"{mib(row.get('live_uploader'))} | {mib(row['upload'])} | "
        f"{row['upload_wall']:.1f} s ({row['upload_calls']:,} calls, {rate:.0f}/s) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", type=int, nargs="+", default=[10000, 30000, 100000])
    parser.add_argument("--per-feature", type=int, default=2000)
    parser.add_argument("--no-live", action="store_true", help="skip the live runs")
    parser.add_argument("--keep", help="generate and keep the suites in this directory")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    compileall.compile_dir(str(ROOT / "behave_bstack"), quiet=1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bstack-mem-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        for size in args.scenarios:
            row = measure(size, args.per_feature, work, live=not args.no_live)
            rows.append(row)
            print(
                f"  {size}: null {row['null_wall']:.1f} s; offline behave {row['offline']:.0f} MiB;"
                f" journal {row['journal_mib']:.0f} MiB; live calls {row.get('live_calls', '-')}",
                flush=True,
            )
    print(
        "| scenarios | behave -f null peak | behave -f bstack peak (live) | "
        "live uploader peak | upload peak | upload wall |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(show(row))
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        per = (last["upload"] - first["upload"]) * MIB / (last["scenarios"] - first["scenarios"])
        print(
            f"upload peak grows {last['upload'] - first['upload']:+.1f} MiB from "
            f"{first['scenarios']:,} to {last['scenarios']:,} scenarios: {per:.0f} bytes per scenario"
        )


if __name__ == "__main__":
    main()
