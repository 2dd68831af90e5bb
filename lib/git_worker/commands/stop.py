"""git worker stop: end agents, keep their worktrees and branches; the registry records it."""

from __future__ import annotations

import sys

from git_worker import lifecycle, output
from git_worker.errors import UsageError, WorkerError
from git_worker.registry import store
from git_worker.registry.record import RUNNING, State
from git_worker.repo import Repo


def run(repo: Repo, ids: list[str], *, stop_all: bool) -> int:
    if stop_all and ids:
        raise UsageError("give worker ids or --all, not both")
    if not stop_all and not ids:
        raise UsageError("which workers? git worker stop ID… (or --all)")
    if stop_all:
        ids = [e.record.id for e in store.all_entries(repo) if isinstance(e, store.Entry)
               and e.record.state in (*RUNNING, State.QUEUED)]
        if not ids:
            print("no running or queued workers")
            return 0
        # Queued ones first, so none of them starts in a slot a stopped one frees.
        ids.sort(key=lambda wid: store.get(repo, wid).record.state != State.QUEUED)
    failed = 0
    for worker_id in dict.fromkeys(ids):
        try:
            print(output.visible(f"{worker_id}: {lifecycle.stop(repo, worker_id)}", lines=True))
        except WorkerError as e:
            print(f"error: {output.visible(worker_id)}: {output.visible(e, lines=True)}",
                  file=sys.stderr)
            failed += 1
    lifecycle.start_queued(repo)  # freed slots (or a queue nothing was starting)
    return 1 if failed else 0
