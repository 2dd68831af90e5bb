"""git worker start: start the agent of a ready worker, or again that of a stopped, failed,
exited or vanished one, in its own worktree and branch. One transaction per id."""

from __future__ import annotations

import sys

from git_worker import agents, launchers, lifecycle, spawn
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.registry.record import State
from git_worker.repo import Repo


def run(repo: Repo, config: Config, ids: list[str], *, agent: str | None, model: str | None,
        queue: bool) -> int:
    config.validate()
    if agent:
        agents.check(config, agent)
    how = spawn.Restart(agent=agent, model=model or None,
                        kind=launchers.default_kind(config),
                        limit=config.max_concurrent, queue=queue)
    failed = 0
    for worker_id in dict.fromkeys(ids):
        try:
            record = spawn.start(repo, config, worker_id, how)
        except WorkerError as e:
            print(f"error: {worker_id}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"started {worker_id} [{record.state}]")
        if record.state == State.QUEUED:
            print(f"  queued: worker.maxConcurrent ({how.limit}) agents are running; "
                  "it starts when one ends")
    lifecycle.start_queued(repo)  # a slot may have freed up meanwhile
    return 1 if failed else 0
