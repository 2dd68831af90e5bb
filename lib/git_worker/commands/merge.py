"""git worker merge: land a worker in its target branch (see git_worker.merge)."""

from __future__ import annotations

from git_worker import merge
from git_worker.config import Config
from git_worker.repo import Repo


def run(repo: Repo, config: Config, worker_id: str, *, squash: bool, into: str | None,
        force: bool) -> int:
    landed = merge.land(repo, config, worker_id, squash=squash, into=into, force=force)
    merge.print_landed(landed)
    return 0
