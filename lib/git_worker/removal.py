"""Removing a worker: a transaction, like spawn, that never loses work without force.

Steps: mark the record `removing` (with its owner process) → stop the agent → remove
the worktree → delete the branch → drop the record. An error undoes what was done (the
worktree is re-created from the branch, the branch and the record put back where they
were). A remover killed half-way leaves a `removing` record whose owner is gone:
`fsck --repair` finishes the removal, re-checking that nothing would be lost.
"""

from __future__ import annotations

import os
from functools import partial

from git_worker import (
    failpoints,
    processes,
    recovery,
    refnames,
    registry,
    worker_processes,
    worktrees,
)
from git_worker.errors import WorkerError
from git_worker.registry import Entry, Record
from git_worker.repo import Repo, append_reflog
from git_worker.undo import UndoLog, transaction


def remove(repo: Repo, worker_id: str, *, force: bool, keep_branch: bool) -> list[str]:
    """Remove the worker; returns what else was done (processes of its that were ended)."""
    entry = registry.get(repo, worker_id)
    record = entry.record
    _refuse_if_busy(record)
    tip = repo.read_ref(record.branch)
    reasons = what_would_be_lost(repo, record, tip, keep_branch=keep_branch)
    if reasons and not force:
        raise WorkerError(
            f"refusing to remove '{worker_id}': " + "; ".join(reasons),
            hint="commit or stash what you want to keep (or git worker merge it), "
                 "keep the branch with --keep-branch, or pass --force to discard it",
        )
    with transaction() as undo:
        return _remove(repo, entry, tip, force=force, keep_branch=keep_branch, undo=undo)


def _remove(repo: Repo, entry: Entry, tip: str | None, *, force: bool, keep_branch: bool,
            undo: UndoLog) -> list[str]:
    record = entry.record
    ref = refnames.registry(record.id)

    def mark(r: Record) -> None:
        _refuse_if_busy(r)  # checked again on the record the compare-and-swap applies to
        r.state = "removing"
        r.owner = processes.identity("rm") | {"force": force, "keep_branch": keep_branch}

    original = entry.oid if record.state != "removing" else None
    marked = registry.update(repo, record.id, mark, "rm: started", current=entry)
    if original:
        undo.push("mark", partial(repo.update_ref, ref, marked.oid, original,
                                  "git-worker: rm undone"))
    failpoints.hit("rm.mark")

    runtime = registry.runtime_dir(repo, record.id)
    ended = []
    if recovery.agent_started(runtime, record):
        ended = recovery.stop_launched(runtime, record.launcher)
    failpoints.hit("rm.stop")

    if os.path.isdir(record.worktree):
        worktrees.remove(repo, record.worktree, force=force)
        if tip is not None:
            undo.push("worktree", partial(_recreate, repo, record.worktree, record.branch))
    elif worktrees.find_admin_dir(repo, record.worktree):
        worktrees.prune(repo)
    failpoints.hit("rm.worktree")

    if not keep_branch and tip is not None:
        if not repo.delete_ref(record.branch, tip, f"git-worker: rm {record.id}"):
            raise WorkerError(f"branch {refnames.short(record.branch)} moved while removing "
                              f"'{record.id}'", hint=f"look at it, then run git worker rm "
                                                     f"{record.id} again")
        undo.push("branch", lambda: repo.create_ref(record.branch, tip, "git-worker: rm undone"))
    failpoints.hit("rm.branch")
    if keep_branch and tip is not None:
        # A mark in the branch's reflog: fsck leaves a branch kept on purpose alone.
        append_reflog(os.path.join(repo.common_dir, "logs", record.branch), tip, tip,
                      kept_mark(record.id))

    # The commit point: once the record is gone, the removal is done.
    if not registry.forget(repo, record.id, marked.oid):
        raise WorkerError(f"'{record.id}' changed while being removed; try again")
    return ended


def _refuse_if_busy(record: Record) -> None:
    """Another live process (a spawn, another rm) owns the worker: never take it over —
    not even with --force, which is about losing work, not about racing a process."""
    owner = record.owner
    if owner is None or recovery.is_abandoned(record):
        return
    if owner.get("pid") == os.getpid() and owner.get("host") == processes.identity()["host"]:
        return
    raise WorkerError(f"'{record.id}' is busy: a {owner.get('action', 'spawn')} is in progress "
                      f"(pid {owner.get('pid')})",
                      hint="wait for it to finish; if that process is stuck, end it, then run "
                           "git worker fsck --repair")


def kept_mark(worker_id: str) -> str:
    return f"git-worker: rm {worker_id}, branch kept"


def kept_on_purpose(repo: Repo, branch_ref: str, worker_id: str) -> bool:
    """Whether `git worker rm --keep-branch` left ``branch_ref`` behind (its reflog says)."""
    try:
        with open(os.path.join(repo.common_dir, "logs", branch_ref), encoding="utf-8",
                  errors="replace") as f:
            return any(line.rstrip("\n").endswith("\t" + kept_mark(worker_id)) for line in f)
    except OSError:
        return False


def _recreate(repo: Repo, path: str, branch: str) -> None:
    tip = repo.read_ref(branch)
    if tip is not None and not os.path.exists(path):
        worktrees.add(repo, path, branch, tip)


def finish_interrupted(repo: Repo, entry: Entry) -> list[str]:
    """Complete an rm whose process died, with the options it was given."""
    owner = entry.record.owner or {}
    ended = remove(repo, entry.record.id, force=bool(owner.get("force")),
                   keep_branch=bool(owner.get("keep_branch")))
    return [*ended, "finished the removal"]


def what_would_be_lost(repo: Repo, record: Record, tip: str | None, *,
                       keep_branch: bool) -> list[str]:
    reasons = []
    runtime = registry.runtime_dir(repo, record.id)
    if recovery.agent_started(runtime, record):
        # Every process of the worker, not only its runner: a killed runner leaves the
        # agent working, and an ended agent may leave children behind.
        who = worker_processes.Worker(record.id, runtime, record.launcher, record.host)
        live = worker_processes.find(who)
        if live:
            reasons.append(f"its agent is still running: {worker_processes.describe(live)} "
                           "(git worker stop it first)")
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
