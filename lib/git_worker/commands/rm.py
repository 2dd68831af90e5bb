"""git worker rm: remove workers — never losing work without --force."""

from __future__ import annotations

import os
import sys

from git_worker import failpoints, processes, recovery, refnames, registry, worktrees
from git_worker.errors import WorkerError
from git_worker.registry import Record
from git_worker.repo import Repo


def run(repo: Repo, ids: list[str], *, force: bool, keep_branch: bool) -> int:
    failed = 0
    for worker_id in dict.fromkeys(ids):
        try:
            remove(repo, worker_id, force=force, keep_branch=keep_branch)
        except WorkerError as e:
            print(f"error: {worker_id}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"removed {worker_id}" + (" (branch kept)" if keep_branch else ""))
    return 1 if failed else 0


def remove(repo: Repo, worker_id: str, *, force: bool, keep_branch: bool) -> None:
    entry = registry.get(repo, worker_id)
    record = entry.record
    if record.state == "spawning" and not recovery.is_abandoned(record) and not force:
        raise WorkerError(f"'{worker_id}' is being spawned right now",
                          hint="wait for the spawn to finish, or pass --force")
    tip = repo.read_ref(record.branch)
    reasons = _what_would_be_lost(repo, record, tip, keep_branch)
    if reasons and not force:
        raise WorkerError(
            f"refusing to remove '{worker_id}': " + "; ".join(reasons),
            hint="commit or stash what you want to keep (or git worker merge it), "
                 "keep the branch with --keep-branch, or pass --force to discard it",
        )
    failpoints.hit("rm.stop")
    if record.launcher.get("pid"):
        recovery.stop_launched(registry.runtime_dir(repo, worker_id), record.launcher)
    failpoints.hit("rm.worktree")
    if os.path.isdir(record.worktree):
        worktrees.remove(repo, record.worktree, force=force)
    elif worktrees.find_admin_dir(repo, record.worktree):
        worktrees.prune(repo)
    failpoints.hit("rm.branch")
    if not keep_branch and tip is not None and not repo.delete_ref(
        record.branch, tip, f"git-worker: rm {worker_id}"
    ):
        raise WorkerError(f"branch {refnames.short(record.branch)} moved while removing "
                          f"'{worker_id}'; its worktree is gone, the branch and record remain",
                          hint=f"look at it, then run git worker rm {worker_id} again")
    failpoints.hit("rm.registry")
    if not registry.forget(repo, worker_id, entry.oid):
        # Changed meanwhile (e.g. the agent just recorded its exit): drop the newer state.
        latest = registry.read(repo, worker_id)
        if latest is not None:
            registry.forget(repo, worker_id, latest.oid)


def _what_would_be_lost(repo: Repo, record: Record, tip: str | None,
                        keep_branch: bool) -> list[str]:
    reasons = []
    live = record.state in registry.LIVE_STATES and record.state != "spawning"
    if live and processes.alive(record.launcher | {"host": record.host}):
        reasons.append("its agent is still running (git worker stop it first)")
    if os.path.isdir(record.worktree):
        dirty = worktrees.dirty_paths(record.worktree)
        if dirty:
            shown = ", ".join(dirty[:5]) + (", …" if len(dirty) > 5 else "")
            reasons.append(f"{len(dirty)} modified or untracked file(s) in its worktree ({shown})")
    if tip is not None and not keep_branch and record.state != "merged":
        base_tip = repo.read_ref(record.base.get("ref") or "") or record.base["oid"]
        ahead = repo.count_commits(tip, base_tip, record.base["oid"])
        if ahead:
            reasons.append(f"branch {refnames.short(record.branch)} has {ahead} commit(s) "
                           f"not in {record.base['name']}")
    return reasons
