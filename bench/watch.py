"""The dashboard's refresh, measured in its own process: CPU time, not wall-clock.

`git worker watch` refreshes every second; what it costs the machine is the CPU of that
refresh in the dashboard's process (model.take: the records, the runtime files, the
probes `list` runs). The git processes it starts (two for-each-ref, one rev-list per
distinct base) run outside it and are timed by `list --json`'s figure. Run by bench/run.py
inside a repository with the workers: python bench/watch.py RUNS → median seconds.
"""

from __future__ import annotations

import statistics
import sys
import time

from git_worker.dashboard import model
from git_worker.repo import Repo


def measure(runs: int) -> tuple[float, int]:
    repo = Repo.discover()
    model.take(repo, show_all=False)  # warm: imports and the first read of each file
    times = []
    rows = 0
    for _ in range(runs):
        start = time.process_time()
        rows = len(model.take(repo, show_all=False).rows)
        times.append(time.process_time() - start)
    return statistics.median(times), rows


if __name__ == "__main__":
    cpu, rows = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 11)
    print(f"{cpu} {rows}")
