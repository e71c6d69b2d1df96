"""How long the offline plan takes, next to the bare cost of importing the SDK modules the program uses.

    .venv/bin/python benchmarks/offline_plan.py [--runs N]

Fresh interpreters, N runs each:
  * the import floor: `pulumi.runtime` plus the module of every resource type the program registers, found from an
    evaluation (so it follows the program), nothing else;
  * `python -m plan` for all stacks (text, no diagram), and with `--diagram` for reference.
In one process after a warm-up, N runs each: the plan of one stack (evaluation, audit, plan, text) with
1, 10 and 50 servers per zone, set through `evaluate(..., overrides=...)`.
Each line shows the median and the minimum; the machine is shared, so the verdicts use the minimum.

Targets (docs/plan.md, "How fast"): all stacks in at most 2x the import floor; cost linear in the number of servers.
This is a measurement, not a test: it prints and exits 0 either way.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from plan import offline, plan_of  # noqa: E402
from plan.text import Style, render  # noqa: E402
from policy.sdk_facts import resource_class  # noqa: E402

FLOOR_TARGET = 2.0
SERVERS_PER_ZONE = (1, 10, 50)
SCALING_STACK = "prod"
# Linear: the time per resource at 50 servers per zone is at most this much above that at 10 (a stack of one server
# per zone is dominated by the fixed cost of an evaluation). Before offline.evaluate paused the cyclic garbage
# collector it was 1.4-1.9x.
LINEAR_SLACK = 1.2


def sdk_modules(stack: str) -> list[str]:
    """The modules that define the resource types the program registers, and the runtime the plan runs on."""
    types = {r.type for r in offline.evaluate(stack, preview=True).resources}
    modules = {cls.__module__ for cls in (resource_class(t) for t in types) if cls is not None}
    return ["pulumi", "pulumi.runtime", *sorted(modules)]


class Timing:
    """Wall times of repeated runs: the median is what a user sees, the minimum what the work itself costs.

    This machine is shared, so other processes inflate some runs; the verdicts use the minimum.
    """

    def __init__(self, times: list[float]) -> None:
        self.median = statistics.median(times)
        self.best = min(times)

    def __str__(self) -> str:
        return f"{self.median:6.3f} s (min {self.best:6.3f})"


def fresh(command: list[str], runs: int) -> Timing:
    """`command` in a fresh process, `runs` times."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=PROJECT_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return Timing(times)


def in_process(work: Callable[[], object], runs: int) -> Timing:
    """`work` in this process, `runs` times, each after a full collection so that it does not pay for the garbage
    of the run before."""
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return Timing(times)


def plan_one(stack: str, servers_per_zone: int) -> int:
    config, _ = offline.stack_config(stack)
    app = {**json.loads(config["ha-webapp:app"]), "serversPerZone": servers_per_zone}
    ev = offline.evaluate(stack, overrides={"ha-webapp:app": json.dumps(app)}, preview=True)
    render(plan_of([ev], offline.project_name()), Style(False))
    return len(ev.resources)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median is reported)")
    runs = parser.parse_args().runs
    python = sys.executable

    modules = sdk_modules(SCALING_STACK)
    startup = fresh([python, "-c", "pass"], runs)
    floor = fresh([python, "-c", f"import {', '.join(modules)}"], runs)
    plan_all = fresh([python, "-m", "plan"], runs)
    with tempfile.TemporaryDirectory() as directory:
        plan_drawn = fresh([python, "-m", "plan", "--diagram", directory], max(1, runs // 2))

    print(f"Fresh interpreter, {runs} runs each ({len(modules)} SDK modules in the floor)")
    rows = [
        ("python -c pass", startup, ""),
        ("import floor: SDK modules the program uses", floor, ""),
        (f"python -m plan ({', '.join(offline.stacks())})", plan_all, f"target <= {FLOOR_TARGET:.1f}x"),
        ("python -m plan --diagram DIR", plan_drawn, "no target"),
    ]
    for what, timing, target in rows:
        print(f"  {what:<48} {timing}  {timing.best / floor.best:5.2f}x floor  {target}")
    ratio = plan_all.best / floor.best
    verdict = "met" if ratio <= FLOOR_TARGET else "MISSED"
    print(
        f"  all stacks: {ratio:.2f}x the import floor (medians: {plan_all.median / floor.median:.2f}x), target "
        f"{FLOOR_TARGET:.1f}x: {verdict}"
    )

    plan_one(SCALING_STACK, 1)  # warm-up: the SDK's lazy imports happen once per process
    print(f"\nOne stack ({SCALING_STACK}) in this process after a warm-up, {runs} runs each")
    print(f"  {'servers/zone':>12}  {'resources':>9}  {'time':>24}  {'ms/resource':>11}")
    measured = []
    for count in SERVERS_PER_ZONE:
        resources = plan_one(SCALING_STACK, count)
        timing = in_process(lambda count=count: plan_one(SCALING_STACK, count), runs)
        measured.append((count, resources, timing.best))
        print(f"  {count:>12}  {resources:>9}  {timing!s:>24}  {1000 * timing.best / resources:>11.2f}")
    (n1, _, t1), (n2, r2, t2), (n3, r3, t3) = measured
    growth = (t3 / r3) / (t2 / r2)
    linear = "linear" if growth <= LINEAR_SLACK else "NOT linear"
    print(
        f"  cost of one more server: {1000 * (t2 - t1) / (2 * (n2 - n1)):.2f} ms ({n1}->{n2}/zone), "
        f"{1000 * (t3 - t2) / (2 * (n3 - n2)):.2f} ms ({n2}->{n3}/zone)"
    )
    print(
        f"  time per resource at {n3}/zone is {growth:.2f}x that at {n2}/zone, target at most {LINEAR_SLACK}x: {linear}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
