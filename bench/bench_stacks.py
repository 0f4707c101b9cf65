"""How long each stack file takes to evaluate under Pulumi mocks (goal: < 2 s each).

Each stack runs in a fresh interpreter, as `pulumi up` would start one, timing import and program
separately: the median of a few runs."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5
GOAL_SECONDS = 2.0

PROBE = """
import json, time
started = time.perf_counter()
from tests.support.program import run_program
imported = time.perf_counter()
mocks, _ = run_program({stack!r})
done = time.perf_counter()
figures = {{"import": imported - started, "program": done - imported, "resources": len(mocks.resources)}}
print(json.dumps(figures))
"""


def measure(stack: str) -> dict[str, float | int | bool]:
    runs = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(stack=stack)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    program = statistics.median(r["program"] for r in runs)
    total = statistics.median(r["import"] + r["program"] for r in runs)
    return {
        "resources": runs[0]["resources"],
        "program_seconds": round(program, 3),
        "with_imports_seconds": round(total, 3),
        "meets_goal": total < GOAL_SECONDS,
    }


def run() -> dict[str, object]:
    stacks = [
        p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in sorted(ROOT.glob("Pulumi.*.yaml"))
    ]
    return {"goal_seconds": GOAL_SECONDS, "runs": RUNS, "stacks": {s: measure(s) for s in stacks}}
