"""Reliability benchmark: the scenarios of tests/reliability, longer and with more trials.

For each scenario prints the trials run, the faults injected by kind (the sandbox's fault table,
counted per kind by a wrapper since the sandbox keeps one total; kills, link cuts, restarts and
disk failures counted by the scenario), what was lost (the goal: nothing) and convergence times.

    .venv/bin/python bench/reliability_bench.py                    # every scenario (several minutes)
    .venv/bin/python bench/reliability_bench.py --quick            # one trial each
    .venv/bin/python bench/reliability_bench.py --only crash --trials 20 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS / "reliability"), str(TESTS)]  # the scenarios, and tests/waits.py

from reliability_scenarios import (  # noqa: E402
    api_faults,
    crash_restart,
    dns_restarts,
    leader_failover,
    proxy_outage,
)
from reliability_support import Report  # noqa: E402
from reliability_worlds import docs_world, fleet_world  # noqa: E402

Trial = Callable[[int, Path], Awaitable[Report]]


def scenarios(args: argparse.Namespace) -> dict[str, tuple[int, Trial]]:
    """name -> (trials, one trial for a seed and a scratch directory)."""
    n = 1 if args.quick else args.trials
    return {
        "api-faults-docs": (n, lambda seed, tmp: api_faults(docs_world(), seed=seed, storm_rounds=8)),
        "api-faults-fleet": (
            n,
            lambda seed, tmp: api_faults(fleet_world(args.units), seed=seed, storm_rounds=8, timeout=180),
        ),
        "crash": (
            1 if args.quick else args.crash_trials,
            lambda seed, tmp: crash_restart(docs_world(), seed=seed, tmp=tmp, kills=3),
        ),
        "leader-failover": (
            n,
            lambda seed, tmp: leader_failover(docs_world(), seed=seed, tmp=tmp, failovers=2, steps=12),
        ),
        "proxy-outage": (n, lambda seed, tmp: proxy_outage(seed=seed, tmp=tmp)),
        "dns-restarts": (n, lambda seed, tmp: dns_restarts(seed=seed, tmp=tmp, rounds=20)),
    }


def merge(name: str, reports: list[Report]) -> Report:
    total = Report(name, trials=len(reports))
    for report in reports:
        total.faults.update(report.faults)
        total.lost += [f"trial {i}: {lost}" for i, lost in enumerate(report.lost)]
        total.seconds += report.seconds
        for key, value in report.extra.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                total.extra[key] = total.extra.get(key, 0) + value
            elif isinstance(value, list) and all(isinstance(v, int | float) for v in value):
                total.extra.setdefault(key, []).extend(value)
            elif isinstance(value, dict):
                merged = total.extra.setdefault(key, {})
                for k, v in value.items():
                    merged[k] = merged.get(k, 0) + v
            else:
                total.extra[key] = value
    return total


def summary(report: Report) -> dict[str, Any]:
    seconds = sorted(report.seconds)
    return {
        "scenario": report.scenario,
        "trials": report.trials,
        "faults": dict(sorted(report.faults.items())),
        "lost": report.lost,
        "convergence_s": {
            "min": round(seconds[0], 2),
            "median": round(statistics.median(seconds), 2),
            "max": round(seconds[-1], 2),
        }
        if seconds
        else None,
        "extra": {k: v for k, v in report.extra.items() if k != "kill_points"},
    }


def print_summary(item: dict[str, Any], elapsed: float) -> None:
    faults = ", ".join(f"{k}={v}" for k, v in item["faults"].items()) or "none"
    times = item["convergence_s"]
    converge = f"{times['min']}/{times['median']}/{times['max']} s (min/median/max)" if times else "n/a"
    print(f"== {item['scenario']} ({elapsed:.0f} s)")
    print(f"   trials run:      {item['trials']}")
    print(f"   faults injected: {faults}")
    lost = f"{len(item['lost'])} {item['lost'][:5]}" if item["lost"] else "0 (nothing)"
    print(f"   lost:            {lost}")
    print(f"   convergence:     {converge}")
    if item["extra"]:
        print(f"   also:            {item['extra']}")


async def run(args: argparse.Namespace) -> int:
    results = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="reliability-bench-") as scratch:
        for name, (trials, trial) in scenarios(args).items():
            if args.only and not any(part in name for part in args.only.split(",")):
                continue
            started = time.monotonic()
            reports = []
            for i in range(trials):
                tmp = Path(scratch) / f"{name}-{i}"
                tmp.mkdir()
                reports.append(await trial(args.seed + i, tmp))
            item = summary(merge(name, reports))
            failed = failed or bool(item["lost"])
            results.append(item)
            if not args.json:
                print_summary(item, time.monotonic() - started)
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=3, help="trials per scenario (default 3)")
    parser.add_argument("--crash-trials", type=int, default=20, help="kill -9 trials (default 20)")
    parser.add_argument("--units", type=int, default=100, help="units of the fleet (default 100)")
    parser.add_argument("--seed", type=int, default=1000, help="first seed (trial i uses seed + i)")
    parser.add_argument("--only", help="comma-separated substrings of scenario names to run")
    parser.add_argument("--quick", action="store_true", help="one trial of each scenario")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
