"""git worker sync: bring workers up to date with the branch they will land in."""

from __future__ import annotations

import sys

from git_worker import refnames, sync
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.repo import Repo


def run(repo: Repo, config: Config, ids: list[str], *, rebase: bool, agent: bool) -> int:
    failed = 0
    for worker_id in dict.fromkeys(ids):
        try:
            done = sync.sync(repo, config, worker_id, rebase=rebase, agent=agent)
        except WorkerError as e:
            print(f"error: {worker_id}: {e}", file=sys.stderr)
            failed += 1
            continue
        into = refnames.short(done.target)
        if done.how == sync.UP_TO_DATE:
            print(f"{worker_id} is up to date with {into}")
        elif done.how == sync.CONFLICT:
            print(f"{worker_id}: conflict with {into} in {', '.join(done.paths)}; its agent "
                  f"was started to resolve it (git worker logs {worker_id} -f)")
        else:
            print(f"{done.how} {into} into {worker_id}: now at {done.tip[:12]}"
                  if done.how == sync.MERGED else
                  f"rebased {worker_id} onto {into}: now at {done.tip[:12]}")
    return 1 if failed else 0
