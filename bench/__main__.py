"""Run the benchmarks and merge their figures into bench/results.json.

`python -m bench` runs every bench/bench_<name>.py; `python -m bench NAME ...` runs those only. Each module's
`run()` returns JSON-able figures, stored under its name with the time and machine they were measured on,
so a partial run keeps the other entries.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: {', '.join(available())})")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(available())}")

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    failed = []
    for name in names:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            figures = importlib.import_module(f"bench.bench_{name}").run()
        except Exception as err:  # one broken benchmark must not lose the others' figures
            print(f"bench: {name} failed: {err!r}", file=sys.stderr)
            failed.append(name)
            continue
        results[name] = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "seconds": round(time.monotonic() - started, 1),
            "figures": figures,
        }
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(json.dumps({name: figures}, indent=2), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
