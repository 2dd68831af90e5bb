"""Landing a worker's branch in its target branch, without surprises.

How (docs/review-and-land.md):
1. The merge is computed in the object store alone: `git merge-tree --write-tree` (git
   2.38+) gives the merged tree or the conflicting paths; no index, no worktree is
   touched, so a conflict leaves everything exactly as it was.
2. The result commit is made with `git commit-tree` (the user's identity): a merge commit
   (parents: target, worker tip), a squash commit (parent: target), or no commit at all
   when the target can fast-forward to the worker's tip.
3. The target ref moves from the tip read in step 1 to the result, as a compare-and-swap:
   - target checked out nowhere: a CAS on the ref (dulwich set_if_equals);
   - target checked out in a worktree W: `git merge --ff-only RESULT` run *in W* — the
     result's first parent is W's HEAD, so this is a fast-forward, and git itself updates
     W's index and files (refusing to overwrite untracked files) and moves the ref only
     from the HEAD it read. We refuse first when W has uncommitted changes to tracked
     files or is mid-rebase, so W's own work is never mixed into, or lost by, a merge.
   When the CAS loses (another merge or commit landed meanwhile), everything is computed
   again from the new tip: two concurrent merges never lose an update.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field

from git_worker import (
    failpoints,
    git,
    locks,
    probe,
    refnames,
    review,
    team,
    worker_processes,
    worktrees,
)
from git_worker.base_branch import landing_branch
from git_worker.config import Config
from git_worker.errors import GitCommandError, WorkerError
from git_worker.registry import store
from git_worker.registry.record import RUNNING, Record, State, now
from git_worker.registry.runtime import RuntimeDir
from git_worker.repo import Repo

_CAS_ATTEMPTS = 30
FAST_FORWARD, MERGE_COMMIT, SQUASH = "fast-forward", "merge commit", "squash"
ALREADY = "already merged"


@dataclass
class TreeMerge:
    """What `git merge-tree --write-tree` said about merging two commits."""

    tree: str
    conflicts: list[str] = field(default_factory=list)  # paths, each once
    messages: list[str] = field(default_factory=list)  # "CONFLICT (content): …" lines

    @property
    def clean(self) -> bool:
        return not self.conflicts


@dataclass
class Landed:
    worker_id: str
    target: str  # refs/heads/…
    old: str
    new: str
    kind: str  # fast-forward, merge commit, squash, or "already merged"
    worktree: str | None  # the worktree that had the target checked out and was updated
    closed_issue: bool = False
    warnings: list[str] = field(default_factory=list)
    elsewhere: str | None = None  # another host's worker: its record stays there, unchanged


def merge_trees(repo: Repo, ours: str, theirs: str) -> TreeMerge:
    """Merge two commits in the object store alone (no index, no worktree)."""
    try:
        tree, conflicts, messages = git.merge_tree(repo.common_dir, ours, theirs)
    except GitCommandError as e:
        raise WorkerError(f"git cannot merge {ours[:12]} and {theirs[:12]}: "
                          f"{e.stderr.strip()}") from None
    return TreeMerge(tree, conflicts, messages)


def is_ancestor(repo: Repo, older: str, newer: str) -> bool:
    return git.is_ancestor(repo.common_dir, older, newer)


def target_ref(repo: Repo, record: Record, into: str | None) -> str:
    """The local branch a worker lands in: --into, else its base (origin/main → main)."""
    if into is not None:
        ref = into if into.startswith(refnames.HEADS) else refnames.HEADS + into
        if repo.read_ref(ref) is None:
            raise WorkerError(f"--into {into}: no local branch {refnames.short(ref)}",
                              hint="name an existing local branch (git branch lists them)")
        return ref
    if "ref" in record.base and record.base["ref"] is None:
        raise WorkerError(f"the base {record.base['name']} is a commit, not a branch: there is "
                          f"no branch to merge into", hint="name one with --into BRANCH")
    base_ref = str(record.base.get("ref") or refnames.HEADS + record.base["name"])
    if base_ref.startswith(refnames.HEADS):
        return base_ref
    if base_ref.startswith(refnames.REMOTES):
        local = landing_branch(repo, base_ref)
        if repo.read_ref(local) is None:
            short = refnames.short(base_ref)
            raise WorkerError(
                f"the base {short} is remote-tracking and there is no local branch "
                f"{refnames.short(local)} to merge into",
                hint=f"create it (git branch {refnames.short(local)} {short}) or choose one "
                     f"with --into BRANCH",
            )
        return local
    raise WorkerError(f"the base {record.base['name']} is not a branch (a tag?): there is no "
                      f"branch to merge into", hint="name one with --into BRANCH")


def refusals(repo: Repo, config: Config, record: Record, tip: str, *,
             elsewhere: bool = False) -> list[str]:
    """Why this worker may not land now (each overridable with --force). ``elsewhere``:
    another host's worker, whose worktree and agent are not here to look at."""
    reasons = []
    rv = record.review or {}
    status = rv.get("status")
    if status == review.BLOCKED:
        reasons.append(f"its last review blocked (gate exit {rv.get('exit_code')}, "
                       f"{rv.get('at')}); fix it and run git worker review {record.id}")
    elif review.required(config, record):
        if status != review.PASSED:
            state = "was never reviewed" if not status else f"last review: {status}"
            reasons.append(f"review is on (worker.review or spawn --review) and it has no "
                           f"passed review ({state}); run git worker review {record.id}")
        elif rv.get("commit") and rv["commit"] != tip:
            reasons.append(f"its review passed for {str(rv['commit'])[:12]}, but the branch has "
                           f"moved to {tip[:12]} since; run git worker review {record.id}")
    if elsewhere:
        return reasons
    # A worktree that is not this repository's, on this branch, is one whose `.git` the
    # agent has replaced or redirected: git run there (a gate's, a review's) read a
    # repository of the agent's making. (A missing worktree is no such sign: the branch
    # is what lands.)
    trouble = worktrees.problem(repo, record.worktree, record.branch)
    if trouble and os.path.lexists(record.worktree):
        reasons.append(f"{trouble}, so what was reviewed there cannot be trusted "
                       "(git worker fsck explains the drift)")
    elif changed := worktrees.config_problem(repo, record.worktree,
                                             RuntimeDir.of(repo, record.id).path):
        reasons.append(changed)  # and a gate's git there would have obeyed it
    if still_working(repo, record):
        reasons.append(f"its agent is still {record.state} and may commit more "
                       f"(git worker stop {record.id} first)")
    return reasons


def still_working(repo: Repo, record: Record) -> bool:
    """Whether the agent (or the spawn) may still change the branch; unknown counts as yes."""
    if record.state == State.SPAWNING:
        return True  # a dead spawn is fsck --repair's business, not a merge's
    if record.state not in RUNNING:
        return False
    if probe.exit_status(repo, record.id) is not None:
        return False  # exited; the registry just has not heard yet
    # The runner or the agent: a killed runner leaves an agent that still commits.
    return worker_processes.recorded_alive(probe.worker(repo, record)) is not False


def land(repo: Repo, config: Config, worker_id: str, *, squash: bool, into: str | None,
         force: bool) -> Landed:
    # Another host's worker (worker.remote): its published record and branch, fetched.
    theirs = team.theirs(repo, config, worker_id)
    if theirs is not None:
        return _land_theirs(repo, config, theirs, squash=squash, into=into, force=force)
    entry = store.get(repo, worker_id)
    record = entry.record
    tip = repo.read_ref(record.branch)
    if tip is None:
        raise WorkerError(f"branch {refnames.short(record.branch)} of '{worker_id}' is missing",
                          hint="git worker fsck explains the drift")
    # A running agent may still commit: then "stop it" is the refusal that helps, and
    # "nothing to merge" is only final once nothing can add to the branch.
    working = still_working(repo, record)
    if not working:
        _refuse_if_nothing_of_its_own(repo, record, tip)
    target = target_ref(repo, record, into)
    reasons = refusals(repo, config, record, tip)
    if reasons and not force:
        raise WorkerError(f"refusing to merge '{worker_id}': " + "; ".join(reasons),
                          hint="--force merges it anyway")
    if working:
        _refuse_if_nothing_of_its_own(repo, record, tip)
    warnings = []
    runtime = RuntimeDir.of(repo, record.id).path
    if (os.path.isdir(record.worktree)
            and not worktrees.problem(repo, record.worktree, record.branch)
            and not worktrees.config_problem(repo, record.worktree, runtime)):
        dirty = worktrees.dirty_paths(repo, record.worktree, runtime)
        if dirty:
            warnings.append(f"{len(dirty)} uncommitted file(s) in {record.worktree} are not "
                            "part of this merge")

    with locks.merge(repo):
        landed = _land_locked(repo, record, target, tip, squash, warnings)
    if landed.kind == ALREADY and record.state == State.MERGED:
        return landed  # keep the record of the merge that did land it
    record_merged(repo, config, record, tip, landed)
    return landed


def _land_theirs(repo: Repo, config: Config, theirs: team.Theirs, *, squash: bool,
                 into: str | None, force: bool) -> Landed:
    """Land another host's worker from its published branch. Its record stays that host's
    (read-only here): the review rules read it, and nothing is recorded in it."""
    record, tip = theirs.record, theirs.tip
    record.merge = None  # a merge its host made, into its own branch, is not one here
    if not theirs.working:
        _refuse_if_nothing_of_its_own(repo, record, tip)
    target = target_ref(repo, record, into)
    # Its worktree and processes are on that host: only the review rules and its
    # published state can refuse here.
    reasons = refusals(repo, config, record, tip, elsewhere=True)
    if theirs.working:
        reasons.append(f"its agent is still {record.state} on {theirs.host} as last "
                       f"published, and may commit more (git worker stop {record.id})")
    if reasons and not force:
        raise WorkerError(f"refusing to merge '{record.id}': " + "; ".join(reasons),
                          hint="--force merges it anyway")
    _refuse_if_nothing_of_its_own(repo, record, tip)
    with locks.merge(repo):
        landed = _land_locked(repo, record, target, tip, squash, [])
    landed.elsewhere = theirs.host
    return landed


def _refuse_if_nothing_of_its_own(repo: Repo, record: Record, tip: str) -> None:
    """A worker whose branch holds no commit beyond its base (never launched, or stopped
    before committing) has nothing to land: marking it merged would hide it from `list`.
    Not overridable with --force: there is nothing for force to land."""
    base_oid = record.base["oid"]
    try:
        if repo.count_commits(tip, base_oid):
            return
    except WorkerError:
        return  # the base commit is gone (garbage-collected): the merge itself will tell
    branch = refnames.short(record.branch)
    raise WorkerError(
        f"nothing to merge: {branch} has no commits beyond its base "
        f"{record.base['name']} ({base_oid[:12]}); '{record.id}' was not changed",
        hint=f"commit its work first (in {record.worktree}), "
             f"or remove it: git worker rm {record.id}",
    )


def record_merged(repo: Repo, config: Config, record: Record, tip: str, landed: Landed) -> None:
    """Record that ``tip`` of ``record`` has landed (and close its issue if so configured)."""
    def change(r: Record) -> None:
        r.state = State.MERGED
        r.merge = {"into": landed.target, "commit": landed.new, "tip": tip,
                   "kind": landed.kind, "at": now()}

    # The target has moved: that is the commit point. If we stop here, the next
    # `git worker merge ID` finds the work landed and records it (no second merge).
    failpoints.hit("merge.record")
    store.update(repo, record.id, change, f"merged into {refnames.short(landed.target)} "
                                          f"as {landed.new[:12]} ({landed.kind})")
    if config.boolean("worker.closeOnMerge"):
        landed.closed_issue = _close_issue(repo, config, record.id,
                                           f"merged as {landed.new}", landed.warnings)


def work_landed(repo: Repo, record: Record, tip: str, target_tip: str) -> bool:
    """Whether every change of the worker's branch is in ``target_tip`` already.

    True when its tip is an ancestor (merged by git-worker or plain git, fast-forwarded),
    and also when merging it would change nothing: the same tree change is there, as after
    a squash merge or a cherry-pick. A branch with no commit of its own is not "landed":
    there is nothing to recognise.
    """
    if tip == record.base.get("oid"):
        return False
    if is_ancestor(repo, tip, target_tip):
        return True
    merged = merge_trees(repo, target_tip, tip)
    return merged.clean and merged.tree == repo.tree_of(target_tip)


def _land_locked(repo: Repo, record: Record, target: str, tip: str, squash: bool,
                 warnings: list[str]) -> Landed:
    worker_id = record.id
    for _ in range(_CAS_ATTEMPTS):
        old = repo.read_ref(target)
        if old is None:
            raise WorkerError(f"branch {refnames.short(target)} disappeared")
        before = record.merge or {}
        if is_ancestor(repo, tip, old) or (before.get("tip"), before.get("into")) == (tip, target):
            return Landed(worker_id, target, old, old, ALREADY, None, warnings=warnings)
        new, kind = result_commit(repo, record, target, old, tip, squash)
        failpoints.hit("merge.compute")  # the commit exists; nothing points to it yet
        if new == old:
            return Landed(worker_id, target, old, old, ALREADY, None, warnings=warnings)
        moved, holder = move_target(repo, target, old, new, f"git worker merge {worker_id}: {kind}")
        if moved:
            return Landed(worker_id, target, old, new, kind, holder, warnings=warnings)
    raise WorkerError(f"{refnames.short(target)} keeps moving while merging; try again")


def move_target(repo: Repo, target: str, old: str, new: str,
                reason: str) -> tuple[bool, str | None]:
    """Move ``target`` from ``old`` to ``new`` (a descendant of ``old``), compare-and-swap;
    a worktree that has it checked out is updated as by `git merge --ff-only`. Returns
    whether it moved (False: the target was no longer at ``old``) and that worktree."""
    holder = _checked_out_in(repo, target)
    if holder is None:
        return repo.update_ref(target, old, new, reason), None
    return _fast_forward_in(repo, holder, target, old, new, reason), holder


def result_commit(repo: Repo, record: Record, target: str, old: str, tip: str,
                   squash: bool) -> tuple[str, str]:
    if not squash and is_ancestor(repo, old, tip):
        return tip, FAST_FORWARD
    merged = merge_trees(repo, old, tip)
    if not merged.clean:
        raise Conflict(record, target, merged)
    branch, into = refnames.short(record.branch), refnames.short(target)
    if squash and merged.tree == repo.tree_of(old):
        return old, ALREADY  # every change is in the target already: no empty commit
    if squash:
        title = record.task.get("title")
        subject = f"{title} ({record.id})" if title else f"{record.id}: squashed {branch}"
        subjects = "\n".join(f"* {s}" for s in git.subjects(repo.common_dir, old, tip,
                                                                  limit=50))
        message = f"{subject}\n\nSquashed from {branch}:\n{subjects}\n"
        parents = [old]
    else:
        message = f"Merge branch '{branch}' into {into}\n\ngit worker merge {record.id}\n"
        parents = [old, tip]
    try:
        # The user's identity and config (GIT_AUTHOR_*, user.*), as for any merge they make.
        new = git.commit_tree(repo.cwd_worktree or repo.common_dir, merged.tree, parents,
                              message)
    except GitCommandError as e:
        raise WorkerError(f"cannot create the {'squash' if squash else 'merge'} commit: "
                          f"{e.stderr.strip()}",
                          hint="set your identity: git config user.name …; "
                               "git config user.email …") from None
    return new, SQUASH if squash else MERGE_COMMIT


class Conflict(WorkerError):
    def __init__(self, record: Record, target: str, merged: TreeMerge) -> None:
        self.paths = merged.conflicts
        shown = "\n".join(f"  {p}" for p in merged.conflicts)
        branch, into = refnames.short(record.branch), refnames.short(target)
        super().__init__(
            f"merging {branch} into {into} conflicts in {len(merged.conflicts)} path(s):\n{shown}\n"
            f"nothing was changed: {into} and every worktree are as they were",
            hint=f"bring {branch} up to date in its worktree (cd {record.worktree} && git merge "
                 f"{into}), resolve and commit there, then merge again; "
                 f"git worker conflicts shows what else collides",
        )


def _checked_out_in(repo: Repo, branch_ref: str) -> str | None:
    """The worktree (main or linked) that has ``branch_ref`` checked out, if any."""
    found = worktrees.holders(repo, branch_ref)
    if found:
        return found[0]
    _refuse_if_rebasing(repo, branch_ref)
    return None


def _refuse_if_rebasing(repo: Repo, branch_ref: str) -> None:
    """A branch being rebased is detached in its worktree, yet the rebase will write it."""
    admins = [repo.common_dir]
    root = os.path.join(repo.common_dir, "worktrees")
    if os.path.isdir(root):
        admins += [os.path.join(root, n) for n in os.listdir(root)]
    for admin in admins:
        for sub in ("rebase-merge", "rebase-apply"):
            try:
                with open(os.path.join(admin, sub, "head-name"), encoding="utf-8") as f:
                    if f.read().strip() == branch_ref:
                        raise WorkerError(f"{refnames.short(branch_ref)} is being rebased "
                                          f"(in {admin})", hint="finish or abort that rebase first")
            except OSError:
                continue


# git's words (strerror) for a refusal of the world, not a lock held by another git.
_WORLD_REFUSALS = ("Permission denied", "Read-only file system", "No space left on device",
                   "Disk quota exceeded")


def _fast_forward_in(repo: Repo, worktree: str, target: str, old: str, new: str,
                     reason: str) -> bool:
    """Move ``target`` (checked out in ``worktree``) from ``old`` to ``new`` with git's own
    fast-forward, updating that worktree's files. False when the target moved meanwhile."""
    # A worker's worktree (it may hold the target: --into worker/<id>) is its agent's:
    # pinned, with the config git-worker wrote, or refused (worktrees.pin).
    runtime = store.owner_runtime(repo, worktree)
    pinned = worktrees.pin(repo, worktree, runtime)
    paths = worktrees.changed_tracked(repo, worktree, runtime)
    if paths:
        shown = ", ".join(paths[:5]) + (", …" if len(paths) > 5 else "")
        raise WorkerError(
            f"{refnames.short(target)} is checked out in {worktree}, which has uncommitted "
            f"changes ({shown}); nothing was changed",
            hint="commit or stash them there first, or merge elsewhere with --into BRANCH",
        )
    if repo.read_ref(target) != old:
        return False
    stderr = git.fast_forward_in(pinned, new, reason)
    if stderr is None:
        return True
    if repo.read_ref(target) != old:
        return False  # someone committed there meanwhile: compute again
    if any(why in stderr for why in _WORLD_REFUSALS):
        raise WorkerError(f"git could not update {worktree} to the merge result: "
                          f"{stderr.strip()}",
                          hint="nothing was changed; make that worktree and the git directory "
                               "writable (or free disk space), then merge again")
    if "index.lock" in stderr or "cannot lock ref" in stderr:
        # Another git (say, a concurrent merge) holds that worktree's index or the ref:
        # wait a little and compute again, as git itself would not.
        time.sleep(random.uniform(0.05, 0.3))
        return False
    raise WorkerError(
        f"git could not update {worktree} to the merge result: "
        f"{stderr.strip()}",
        hint=f"nothing was changed; clear what git names in {worktree} and merge again",
    )


# --- the tracker ---------------------------------------------------------------------------
# Kept here, small, until a tracker module owns every bd call (then it moves there).


def _close_issue(repo: Repo, config: Config, issue_id: str, reason: str,
                 warnings: list[str]) -> bool:
    """Close the tracker's issue; a failure is a warning: the merge itself has happened."""
    from git_worker import tracker

    try:
        if tracker.kind(config, repo.main_worktree) != "bd":
            return False
        tracker.close(repo, issue_id, reason, timeout=config.tracker_timeout)
    except WorkerError as e:
        warnings.append(e.message)
        return False
    return True
