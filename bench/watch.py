"""`git worker watch`'s refresh with many workers: CPU time of the dashboard's process.

The dashboard refreshes every second; what that costs the machine is the CPU its own
process spends per refresh (time.process_time counts every thread of it, not the git
processes it starts: those are `list --json`'s figure). Two figures:
- refresh: model.take alone — the records, runtime files and probes `list` uses;
- dashboard: the running app, headless (Textual's run_test), over several refreshes:
  the probe, the table's update and Textual's drawing, divided by the refreshes.
Run by bench/run.py inside a repository with the workers:
python bench/watch.py RUNS → "<refresh s> <dashboard s> <rows>".
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from git_worker.dashboard import model
from git_worker.repo import Repo


def refresh(repo: Repo, runs: int) -> tuple[float, int]:
    model.take(repo, show_all=False)  # warm: imports and the first read of each file
    times = []
    rows = 0
    for _ in range(runs):
        start = time.process_time()
        rows = len(model.take(repo, show_all=False).rows)
        times.append(time.process_time() - start)
    return statistics.median(times), rows


def dashboard(repo: Repo, refreshes: int) -> float:
    from git_worker.dashboard.app import WatchApp

    done: list[float] = []

    def take() -> model.Snapshot:
        snapshot = model.take(repo, show_all=False)
        done.append(time.process_time())
        return snapshot

    app = WatchApp(repo, take=take, forecast=lambda: model.ForecastLine("", False))

    async def run() -> float:
        # Waits with asyncio.sleep, not pilot.pause: a pause waits for the screen to settle
        # and costs CPU of its own, which a user's dashboard does not spend.
        async with app.run_test(size=(80, 24)):  # the size the issue names
            while len(done) < 2:  # the first table is drawn: start counting from there
                await asyncio.sleep(0.05)
            first, start = len(done), time.process_time()
            while len(done) < first + refreshes:
                await asyncio.sleep(0.05)
            return (time.process_time() - start) / (len(done) - first)

    return asyncio.run(run())


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    repo = Repo.discover()
    cpu, rows = refresh(repo, runs)
    print(f"{cpu} {dashboard(repo, runs)} {rows}")
