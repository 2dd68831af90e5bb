"""Removing a worker: a transaction, like spawn, that never loses work without force.

Steps: mark the record `removing` (with its owner process) → stop the agent → remove
the worktree (git checking, as it removes it, that it holds no work: see _git_can_check)
→ delete the branch and drop the record, in one transaction. An error undoes what was
done (the worktree is re-created from the branch, the record put back where it was). A
remover killed half-way leaves a `removing` record whose owner is gone:
`fsck --repair` finishes the removal, re-checking that nothing would be lost.
"""

from __future__ import annotations

import os

from git_worker import (
    copies,
    failpoints,
    leases,
    processes,
    recovery,
    refnames,
    team,
    worker_processes,
    worktrees,
)
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.registry import store
from git_worker.registry.record import Record, State
from git_worker.registry.record_cache import RecordCache
from git_worker.registry.runtime import RuntimeDir
from git_worker.registry.store import Entry
from git_worker.repo import Repo, append_reflog
from git_worker.undo import UndoLog, transaction


class Removed:
    """What remove() did, for rm to tell."""

    def __init__(self, worktree: str, state: str, notes: list[str], ended: list[str]) -> None:
        self.worktree = worktree
        self.state = state  # the worker's state before the removal began
        self.notes = notes  # for the user: what was kept, a teardown that failed (--force)
        self.ended = ended  # processes of the worker's that were ended


def remove(repo: Repo, worker_id: str, *, force: bool, keep_branch: bool,
           config: Config | None = None) -> Removed:
    """Remove the worker. A branch or worktree that another record names too is never
    removed with this one (a note says so)."""
    # Every record, once: this one, and whether another names its branch or worktree; and,
    # in the same `git for-each-ref`, the branches (its own and its base's tips). The
    # others from list's record cache where it has them (a few from their loose files: no
    # cat-file), this one from git's objects: it is the one rm changes (record_cache.py).
    refs = repo.ref_table(*refnames.RM_REFS)
    entries = store.all_entries(repo, refs, loose=True, cache=RecordCache.of(repo),
                                fresh=refnames.registry(worker_id))
    entry = store.get(repo, worker_id, entries)
    record = entry.record
    state = record.state
    _refuse_if_busy(record)
    tip = _tip(repo, refs, record.branch)
    shared = recovery.shared_with(repo, record, entries)
    config = config or Config.load(repo.common_dir)
    git_checks = not force and _git_can_check(repo, record, shared, config)
    reasons = what_would_be_lost(repo, record, tip, keep_branch=keep_branch, shared=shared,
                                 refs=refs, files=not git_checks)
    if reasons and not force:
        if git_checks:  # refused all the same: the worktree's files are named too
            reasons = what_would_be_lost(repo, record, tip, keep_branch=keep_branch,
                                         shared=shared, refs=refs)
        raise _refusal(worker_id, reasons)
    notes = leases.teardown(repo, config, record, force=force)  # refuses before anything goes
    team.configured(repo, config)  # whether its commits go to worker.remote: asked once
    if shared.worktree:
        notes.append(recovery.named_too(f"worktree {record.worktree}", shared.worktree))
    if shared.branch and tip is not None and not keep_branch:
        notes.append(recovery.named_too(f"branch {refnames.short(record.branch)}",
                                        shared.branch))
    try:
        with transaction() as undo:
            ended = _remove(repo, entry, tip, force=force, keep_branch=keep_branch,
                            shared=shared, checked=not force and not git_checks,
                            undo=undo)
    except WorkerError as e:
        if git_checks and isinstance(e, _WorktreeRefused):
            # git refused the worktree (the removal is rolled back): say why, as when our
            # own status finds the files.
            reasons = what_would_be_lost(repo, record, tip, keep_branch=keep_branch,
                                         shared=shared, refs=refs)
            if reasons:
                refusal = _refusal(worker_id, reasons)
                refusal.message += e.message[len(str(e.args[0])):]  # what the rollback said
                raise refusal from None
        raise
    return Removed(record.worktree, state, notes, ended)


def _refusal(worker_id: str, reasons: list[Loss]) -> WorkerError:
    return WorkerError(
        f"refusing to remove '{worker_id}': " + "; ".join(str(r) for r in reasons),
        hint=", and ".join(dict.fromkeys(r.remedy for r in reasons))
             + "; or pass --force to discard it",
    )


def _git_can_check(repo: Repo, record: Record, shared: recovery.Shared,
                   config: Config) -> bool:
    """Whether `git worktree remove` without --force can be the check that the worker's
    worktree holds no work, instead of a `git status` of our own before a `--force` one
    (the floor's way: one git process less, and the tree looked at just before anything is
    deleted rather than before the record is marked). git runs the same status (modified,
    staged and untracked files, not ignored ones; submodules refused) and refuses the
    whole removal otherwise; rm then rolls back to the record it found and says why.

    Not when something would already have changed by then that a refusal must not
    change: a `worker.teardown` that runs before (and may write in the worktree), or
    `worker.copy` files, which rm deletes before git looks (and which git does not see:
    they are excluded there, and an edited one is work)."""
    if shared.worktree or not os.path.isdir(record.worktree):
        return False
    if config.values("worker.teardown"):
        return False
    runtime = RuntimeDir.of(repo, record.id).path
    return not copies.unchanged(runtime, record.worktree) \
        and not copies.changed(runtime, record.worktree)


def _remove(repo: Repo, entry: Entry, tip: str | None, *, force: bool, keep_branch: bool,
            shared: recovery.Shared, checked: bool, undo: UndoLog) -> list[str]:
    """``checked``: what_would_be_lost has just found nothing to lose in the worktree."""
    record = entry.record
    ref = refnames.registry(record.id)

    def mark(r: Record) -> None:
        _refuse_if_busy(r)  # checked again on the record the compare-and-swap applies to
        r.state = State.REMOVING
        r.owner = processes.identity("rm") | {"force": force, "keep_branch": keep_branch}

    original = entry.oid if record.state != State.REMOVING else None
    marked = store.update(repo, record.id, mark, "rm: started", current=entry)
    if original:
        undo.push("mark", lambda: repo.update_ref(ref, marked.oid, original,
                                                  "git-worker: rm undone"))
    failpoints.hit("rm.mark")

    runtime = RuntimeDir.of(repo, record.id).path
    ended = []
    if recovery.agent_started(runtime, record):
        ended = recovery.stop_launched(runtime, record.launcher)
    failpoints.hit("rm.stop")

    if shared.worktree:
        pass  # another record's too: see remove()
    elif os.path.isdir(record.worktree):
        copies.discard_unchanged(runtime, record.worktree)  # where git would count them
        # Found clean just now (its agent, if any, ended): git's own check would run
        # `git status` over the whole tree a second time, a third of rm's time on 5,000
        # files. Not with submodules, whose unpushed commits no status shows: git refuses.
        clean = checked and not os.path.exists(os.path.join(record.worktree, ".gitmodules"))
        try:
            worktrees.remove(repo, record.worktree, runtime, force=force or clean)
        except WorkerError as e:
            raise _WorktreeRefused(e.message, hint=e.hint) from None
        if tip is not None:
            undo.push("worktree", lambda: _recreate(repo, record.worktree, record.branch))
    elif worktrees.find_admin_dir(repo, record.worktree):
        worktrees.prune(repo)
    failpoints.hit("rm.worktree")

    if keep_branch and tip is not None and not shared.branch:
        # A mark in the branch's reflog: fsck leaves a branch kept on purpose alone.
        append_reflog(os.path.join(repo.common_dir, "logs", record.branch), tip, tip,
                      kept_mark(record.id))
    failpoints.hit("rm.branch")  # the branch (and the record) next

    # The commit point: the branch and the record go in one transaction (one `git
    # update-ref` where two ran), each only if still where it was; once the record is
    # gone, the removal is done.
    branch = ({record.branch: tip} if not keep_branch and not shared.branch and tip is not None
              else None)
    if not store.forget(repo, record.id, marked.oid, also=branch):
        if branch and repo.read_ref(record.branch) != tip:
            raise WorkerError(f"branch {refnames.short(record.branch)} moved while removing "
                              f"'{record.id}'", hint=f"look at it, then run git worker rm "
                                                     f"{record.id} again")
        raise WorkerError(f"'{record.id}' changed while being removed; try again")
    leases.release_quietly(repo.common_dir, record)
    return ended


class _WorktreeRefused(WorkerError):
    """git did not remove the worktree (without --force: it holds files git would lose)."""


_BRANCHES = (refnames.HEADS, refnames.REMOTES)  # where branches and bases are


def _tip(repo: Repo, refs: dict[str, str] | None, name: str) -> str | None:
    """What ``name`` points to: from ``refs`` (a ref table read just now) when it holds the
    branch, else asked of the repository (a ref elsewhere, or one git could not read)."""
    if refs is not None and name.startswith(_BRANCHES):
        found = refs.get(name)
        if found != "":
            return found
    return repo.read_ref(name)


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
    removed = remove(repo, entry.record.id, force=bool(owner.get("force")),
                     keep_branch=bool(owner.get("keep_branch")))
    return [*removed.ended, "finished the removal", *removed.notes]


class Loss:
    """What an rm would lose, and what the user can do so that rm no longer refuses.

    Each refusal carries its own remedy: a hint offers only what changes the outcome
    (--keep-branch saves commits, not untracked files; it does not stop an agent)."""

    def __init__(self, what: str, remedy: str) -> None:
        self.what = what
        self.remedy = remedy

    def __str__(self) -> str:
        return self.what


def what_would_be_lost(repo: Repo, record: Record, tip: str | None, *,
                       keep_branch: bool, shared: recovery.Shared | None = None,
                       refs: dict[str, str] | None = None, files: bool = True) -> list[Loss]:
    """Why removing the worker would lose work, each with what lifts it. What another
    record names too is not removed (see remove), so it loses nothing. ``refs``: the
    branches (refs/heads/, refs/remotes/) as the caller has just read them, if it has.
    ``files``: False when the caller has git check the worktree's files as it removes it
    (see _git_can_check); everything else is checked here all the same."""
    reasons = []
    runtime = RuntimeDir.of(repo, record.id).path
    if recovery.agent_started(runtime, record):
        # Every process of the worker, not only its runner: a killed runner leaves the
        # agent working, and an ended agent may leave children behind.
        who = worker_processes.Worker(record.id, runtime, record.launcher, record.host)
        live = worker_processes.find(who)
        if live:
            reasons.append(Loss(f"its agent is still running: {worker_processes.describe(live)}",
                                f"stop it first: git worker stop {record.id}"))
    keep_branch = keep_branch or bool(shared and shared.branch)
    if files and os.path.isdir(record.worktree) and not (shared and shared.worktree):
        # worker.copy's files are not work unless changed since the spawn copied them.
        unchanged = set(copies.unchanged(runtime, record.worktree))
        try:
            dirty = [p for p in worktrees.dirty_paths(repo, record.worktree, runtime)
                     if p not in unchanged]
        except worktrees.ConfigChanged as e:
            reasons.append(Loss(f"{e.message}: what it holds cannot be checked",
                                "look at that file, then restore it: git worker fsck --repair"))
            dirty = []
        except WorkerError as e:  # not ours (any more): what is in it cannot be told
            reasons.append(Loss(f"{e.message}: what it holds cannot be checked",
                                f"look in {record.worktree} and save what you need"))
            dirty = []
        dirty += [p for p in copies.changed(runtime, record.worktree) if p not in dirty]
        if dirty:
            shown = ", ".join(dirty[:5]) + (", …" if len(dirty) > 5 else "")
            reasons.append(Loss(
                f"{len(dirty)} modified or untracked file(s) in its worktree ({shown})",
                f"commit, stash (git stash -u) or delete them in {record.worktree}"))
    # A merged worker's branch may have moved on since (its agent went on committing).
    merged_tip = (record.merge or {}).get("tip") if record.state == State.MERGED else None
    if tip is not None and not keep_branch and tip != merged_tip:
        base_ref = record.base.get("ref")
        base_tip = (_tip(repo, refs, base_ref) if base_ref else None) or record.base["oid"]
        ahead = repo.count_commits(tip, base_tip, record.base["oid"])
        if ahead and not landed(repo, record, tip):
            reasons.append(Loss(
                f"branch {refnames.short(record.branch)} has {ahead} commit(s) "
                f"not in {record.base['name']}",
                f"land them (git worker merge {record.id}) or keep the branch with "
                f"--keep-branch"))
    return reasons


def landed(repo: Repo, record: Record, tip: str) -> str | None:
    """The branch (refs/heads/…) that holds every change of the worker's branch — merged by
    git-worker, by plain git, or squash-merged — or None."""
    from git_worker import merge

    targets = []
    if record.merge and record.merge.get("into"):
        targets.append(str(record.merge["into"]))
    try:
        targets.append(merge.target_ref(repo, record, None))
    except WorkerError:
        pass  # a tag or remote-only base: nothing it would land in by itself
    for target in dict.fromkeys(targets):
        target_tip = repo.read_ref(target)
        if target_tip is not None and merge.work_landed(repo, record, tip, target_tip):
            return target
    return None
