"""git worker rm: remove workers — never losing work without --force."""

from __future__ import annotations

import sys

from git_worker import lifecycle, removal
from git_worker.errors import WorkerError
from git_worker.repo import Repo


def run(repo: Repo, ids: list[str], *, force: bool, keep_branch: bool) -> int:
    failed = 0
    for worker_id in dict.fromkeys(ids):
        try:
            ended = removal.remove(repo, worker_id, force=force, keep_branch=keep_branch)
        except WorkerError as e:
            print(f"error: {worker_id}: {e}", file=sys.stderr)
            failed += 1
            continue
        notes = (["branch kept"] if keep_branch else []) + ended
        print(f"removed {worker_id}" + (f" ({'; '.join(notes)})" if notes else ""))
    lifecycle.start_queued(repo)  # a removed worker may have held a worker.maxConcurrent slot
    return 1 if failed else 0
