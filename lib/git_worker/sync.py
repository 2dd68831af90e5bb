"""Bringing a worker up to date with the branch it will land in, in its own worktree.

Merge by default, rebase on request. Refused while its agent runs or its worktree has
uncommitted changes (the merge must not mix with, or lose, anything). A conflict either
aborts — branch and worktree exactly as they were: a merge is first tried in the object
store alone (merge.merge_trees), a rebase is undone with `git rebase --abort` — or, with
``agent``, is left in place for the worker's agent, started with a prompt to resolve it
and commit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from git_worker import git, lifecycle, merge, refnames, worktrees
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.registry import store
from git_worker.registry.record import Record, State
from git_worker.registry.runtime import RuntimeDir, write_atomically
from git_worker.repo import Repo

UP_TO_DATE, MERGED, REBASED, CONFLICT = "up to date", "merged", "rebased", "conflict"
_ACTION = "git worker sync"


@dataclass
class Synced:
    id: str
    how: str  # up to date, merged, rebased, conflict (left for the agent)
    target: str  # refs/heads/…
    tip: str  # the worker's branch tip now
    paths: list[str] = field(default_factory=list)  # conflicting, when how == conflict


class SyncConflict(WorkerError):
    def __init__(self, record: Record, target: str, paths: list[str], rebase: bool) -> None:
        self.paths = paths
        shown = "\n".join(f"  {p}" for p in paths)
        into = refnames.short(target)
        super().__init__(
            f"{'rebasing' if rebase else 'merging'} {refnames.short(record.branch)} onto {into} "
            f"conflicts in {len(paths)} path(s):\n{shown}\n"
            f"nothing was changed: its branch and worktree are as they were",
            hint=f"let its agent resolve it: git worker sync {record.id} --agent"
                 + ("" if rebase else f"; or merge by hand: cd {record.worktree} && "
                                      f"git merge {into}"))


def sync(repo: Repo, config: Config, worker_id: str, *, rebase: bool, agent: bool) -> Synced:
    record = store.get(repo, worker_id).record
    tip = repo.read_ref(record.branch)
    if tip is None:
        raise WorkerError(f"branch {refnames.short(record.branch)} of '{worker_id}' is missing",
                          hint="git worker fsck explains the drift")
    pinned = _refuse(repo, record)
    try:
        target = merge.target_ref(repo, record, None)
    except WorkerError as e:  # a tag or remote-only base: nothing it lands in by itself
        raise WorkerError(f"cannot sync '{worker_id}': {e.message}",
                          hint=f"bring in what you want by hand: cd {record.worktree} && "
                               "git merge BRANCH") from None
    target_tip = repo.read_ref(target)
    if target_tip is None:
        raise WorkerError(f"branch {refnames.short(target)} disappeared")
    if merge.is_ancestor(repo, target_tip, tip):
        return Synced(worker_id, UP_TO_DATE, target, tip)
    into = refnames.short(target)
    if rebase:
        done = git.rebase_in(pinned, target_tip, _ACTION)
    else:
        trial = merge.merge_trees(repo, tip, target_tip)
        if not trial.clean and not agent:
            raise SyncConflict(record, target, trial.conflicts, rebase)
        message = f"Merge branch '{into}' into {refnames.short(record.branch)}\n\n{_ACTION}"
        done = git.merge_in(pinned, target_tip, message, _ACTION)
    if done:
        new_tip = git.head_commit(pinned)
        _record_base(repo, worker_id, target, target_tip,
                     f"sync: {'rebased onto' if rebase else 'merged'} {into} at {target_tip[:12]}")
        return Synced(worker_id, REBASED if rebase else MERGED, target, new_tip)
    paths = git.unmerged_paths(pinned)
    if not agent or not paths:
        _abort(record, pinned, tip, "rebase" if rebase else "merge")
        if not paths:  # stopped for another reason (say, an untracked file in the way)
            raise WorkerError(f"git could not {'rebase' if rebase else 'merge'} {into} in "
                              f"{record.worktree}; nothing was changed",
                              hint=f"cd {record.worktree} && git {'rebase' if rebase else 'merge'}"
                                   f" {into} shows why")
        raise SyncConflict(record, target, paths, rebase)
    _start_agent(repo, config, record, _prompt(record, into, paths, rebase),
                 f"sync: conflict with {into} in {len(paths)} path(s); agent started to "
                 "resolve it")
    return Synced(worker_id, CONFLICT, target, tip, paths)


def _refuse(repo: Repo, record: Record) -> git.Pinned:
    """Why the worker cannot be synced now, raised; else its worktree, pinned (git is run
    there through its registered admin dir and only with the config git-worker wrote)."""
    if record.state in (State.SPAWNING, State.REMOVING, State.QUEUED):
        raise WorkerError(f"'{record.id}' is {record.state}", hint="wait for it, then sync")
    if merge.still_working(repo, record):
        raise WorkerError(f"the agent of '{record.id}' is still {record.state}; syncing now "
                          "would change its files under it",
                          hint=f"wait for it to finish, or stop it: git worker stop {record.id}")
    if not os.path.isdir(record.worktree):
        raise WorkerError(f"the worktree of '{record.id}' ({record.worktree}) is missing",
                          hint="git worker fsck explains the drift")
    trouble = worktrees.problem(repo, record.worktree, record.branch)
    if trouble:
        raise WorkerError(f"cannot sync '{record.id}': {trouble}",
                          hint="git worker fsck explains the drift")
    try:
        pinned = worktrees.pin(repo, record.worktree, RuntimeDir.of(repo, record.id).path)
    except WorkerError as e:
        raise WorkerError(f"cannot sync '{record.id}': {e.message}", hint=e.hint) from None
    dirty = worktrees.dirty_paths(repo, record.worktree, RuntimeDir.of(repo, record.id).path)
    if dirty:
        shown = ", ".join(dirty[:5]) + (", …" if len(dirty) > 5 else "")
        raise WorkerError(f"the worktree of '{record.id}' has {len(dirty)} uncommitted "
                          f"file(s) ({shown})",
                          hint=f"commit or stash them in {record.worktree}, then sync")
    return pinned


def _abort(record: Record, pinned: git.Pinned, tip: str, operation: str) -> None:
    git.abort_in(pinned, operation)
    if git.head_commit(pinned) != tip:  # never expected: say so rather than hide it
        raise WorkerError(f"git {operation} --abort left {record.worktree} at another commit "
                          f"than {tip[:12]}", hint=f"look at it: git -C {record.worktree} status")


def _record_base(repo: Repo, worker_id: str, target: str, target_tip: str, event: str) -> None:
    """The worker now includes ``target_tip``: that is its base (behind counts from it)."""
    def change(r: Record) -> None:
        r.base = {**r.base, "name": refnames.short(target), "ref": target, "oid": target_tip,
                  "fetched": False, "fetch_error": None}

    store.update(repo, worker_id, change, event)


def _prompt(record: Record, into: str, paths: list[str], rebase: bool) -> str:
    listed = "\n".join(f"- {p}" for p in paths)
    title = record.task.get("title") or record.id
    if rebase:
        finish = ("resolve each conflict, `git add` the files, then `git rebase --continue` "
                  "until the rebase is done (never `git rebase --abort`)")
    else:
        finish = ("resolve each conflict, `git add` the files, then `git commit --no-edit` "
                  "to conclude the merge (never `git merge --abort`)")
    return (f"You are working on task {record.id}: {title}.\n\n"
            f"Your branch is being brought up to date with {into}: "
            f"`git {'rebase' if rebase else 'merge'} {into}` stopped with conflicts in:\n"
            f"{listed}\n\n"
            f"Keep both your change and what {into} brought; {finish}. Run the tests if the "
            "project has them. When the working tree is clean and the conflict is committed, "
            "you are done.\n")


def _start_agent(repo: Repo, config: Config, record: Record, prompt: str, event: str) -> None:
    """Start the worker's agent again in its worktree, with ``prompt``.

    Through lifecycle.launch_recorded, the launch path queued workers use (same agent,
    model and launcher). To become `git worker start` once that command lands.
    """
    runtime = RuntimeDir.of(repo, record.id)
    os.makedirs(runtime.path, exist_ok=True)
    write_atomically(runtime.prompt, prompt)
    try:
        os.remove(runtime.exit)  # the previous run's: not this one's
    except FileNotFoundError:
        pass

    def running(r: Record) -> None:
        r.state, r.exit_code = State.RUNNING, None
        # A worker prepared with --no-launch has no agent yet: the one spawn would choose.
        r.agent = r.agent or config.agent

    entry = store.update(repo, record.id, running, event)
    try:
        lifecycle.launch_recorded(repo, config, entry.record)
    except WorkerError:
        def failed(r: Record) -> None:
            r.state = State.FAILED

        store.update(repo, record.id, failed, "sync: the agent could not be started")
        raise
