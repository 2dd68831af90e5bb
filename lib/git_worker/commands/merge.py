"""git worker merge: land a worker in its target branch (see git_worker.merge)."""

from __future__ import annotations

import sys

from git_worker import merge, refnames
from git_worker.config import Config
from git_worker.output import visible
from git_worker.repo import Repo


def run(repo: Repo, config: Config, worker_id: str, *, squash: bool, into: str | None,
        force: bool) -> int:
    landed = merge.land(repo, config, worker_id, squash=squash, into=into, force=force)
    print_landed(landed)
    return 0


def print_landed(landed: merge.Landed) -> None:
    into = visible(refnames.short(landed.target))
    if landed.kind == merge.ALREADY:
        marked = "" if landed.elsewhere else " (marked merged)"
        print(f"nothing to merge: {landed.worker_id} is already in {into}{marked}")
    else:
        where = f"; updated the worktree {visible(landed.worktree)}" if landed.worktree else ""
        print(f"merged {landed.worker_id} into {into} as {landed.new[:12]} ({landed.kind}){where}")
    if landed.closed_issue:
        print(f"closed issue {landed.worker_id}")
    for w in landed.warnings:
        print(f"warning: {visible(w, lines=True)}", file=sys.stderr)
    if landed.elsewhere:
        print(f"next, on {visible(landed.elsewhere)}: git worker rm {landed.worker_id}  (its "
              "record, worktree and branch are there; its record here is read-only)")
    else:
        print(f"next: git worker rm {landed.worker_id}  (removes its worktree and branch)")
