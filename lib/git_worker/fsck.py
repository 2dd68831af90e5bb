"""Drift between registry, branches and worktrees: found, and with repair=True fixed.
Repairs never delete work: branches and directories that may hold some are reported, not
removed. `git worker fsck` (commands/fsck.py) prints what check() returns."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import partial

from git_worker import config as config_mod
from git_worker import (
    leases,
    lifecycle,
    locks,
    output,
    probe,
    recovery,
    refnames,
    removal,
    spawn,
    stale_git_locks,
    worker_processes,
    worktrees,
)
from git_worker.errors import WorkerError, from_os_error
from git_worker.registry import store
from git_worker.registry.record import RUNNING, Corrupt, Record, State
from git_worker.registry.runtime import (
    RECORD_CACHE,
    RuntimeDir,
    not_a_directory,
    runtime_root,
)
from git_worker.repo import Repo

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass
class Finding:
    id: str | None
    problem: str
    repair: str | None  # what --repair does (or did); None: needs a human
    repaired: bool = False


def check(repo: Repo, config: config_mod.Config, *, repair: bool) -> list[Finding]:
    findings: list[Finding] = []

    def found(worker_id: str | None, problem: str, fix: str | None,
              action: Callable[[], object] | None = None) -> None:
        finding = Finding(worker_id, problem, fix)
        if repair and fix and action is not None:
            try:
                done = action()
                finding.repaired = True
                if isinstance(done, list) and done:
                    finding.repair = "; ".join(done)
            except WorkerError as e:
                finding.problem += f" (repair failed: {e})"
            except OSError as e:
                world = from_os_error(e)
                if world is None:
                    raise
                finding.problem += f" (repair failed: {world})"
        findings.append(finding)

    # First: a stale lock makes the repairs below that touch its file fail.
    for lock in stale_git_locks.find(repo.common_dir):
        if lock.age <= stale_git_locks.STALE_AFTER:
            continue  # in use by a git running now, most likely: not a problem (yet)
        whose = _lock_owner(repo, config, lock.path)
        if lock.stale:
            found(whose, f"stale lock {lock.path} ({output.duration(lock.age)} old, no process "
                         "has it open)", "delete it",
                  partial(stale_git_locks.remove_if_stale, lock))
        else:
            found(whose, f"lock {lock.path} is {output.duration(lock.age)} old but "
                         f"{lock.why_kept()}", None)

    known_ids = set()
    # One read of every ref for every check below: a read per worker made fsck quadratic
    # in the number of workers (each read lists every worker's refs).
    reality = probe.Reality.read(repo, refnames.REGISTRY)
    entries = store.all_entries(repo, reality.refs)
    _check_shared([e for e in entries if isinstance(e, store.Entry)], found)
    for item in entries:
        known_ids.add(item.id if isinstance(item, Corrupt) else item.record.id)
        if isinstance(item, Corrupt):
            restorable = store.salvage(repo, item) is not None
            found(item.id, f"unreadable registry record ({item.reason})",
                  "restore the last readable state from its history" if restorable else None,
                  partial(store.restore_last_readable, repo, item))
            continue
        _check_entry(repo, reality, item, found)
    _check_team(repo, config, found)

    # The records read above, unless a repair has just changed some: a second read of
    # every one cost 1,000 workers ~150 ms.
    if any(f.repaired for f in findings):
        entries = store.all_entries(repo)
    queued = [e.record for e in entries
              if isinstance(e, store.Entry) and e.record.state == State.QUEUED]
    if queued and not locks.queue_busy(repo):
        problem = lifecycle.stalled(queued, len(lifecycle.running_ids(repo)),
                                    config.max_concurrent)
        if problem:
            oldest = min(queued, key=lifecycle.queue_order).id
            found(oldest, problem.split(";")[0], "start the queue, oldest first",
                  lambda: [f"started {', '.join(lifecycle.start_queued(repo)) or 'nothing'}"])

    prefix = config.branch_prefix
    branches = refnames.HEADS + prefix
    for ref in sorted(r for r in reality.refs if r.startswith(branches)):
        name = ref[len(branches):]
        if name not in known_ids and not removal.kept_on_purpose(repo, ref, name):
            found(None, f"branch {prefix}{name} has no worker record", None)
    root = spawn.worktree_root(repo, config)
    if os.path.isdir(root):
        for name in sorted(os.listdir(root)):
            if name not in known_ids:
                found(None, f"{os.path.join(root, name)} is in worker.worktreeDir "
                            "but belongs to no worker", None)
    runtimes = runtime_root(repo)
    why = not_a_directory(runtimes)
    if why is not None:
        found(None, f"the runtime directory {why}", "move it out of the way (not followed)",
              partial(_move_aside, runtimes))
    elif os.path.isdir(runtimes):
        for name in sorted(os.listdir(runtimes)):
            if name.startswith(RECORD_CACHE):  # list's (and a temporary of it): no worker's
                continue
            path = os.path.join(runtimes, name)
            why = not_a_directory(path)
            if why is not None:
                found(name if name in known_ids else None, f"runtime path {why}",
                      "remove it (not followed)", partial(os.unlink, path))
            elif name not in known_ids:
                still = _still_there(repo, prefix + name, os.path.join(root, name))
                if still:
                    # The agent's log and prompt are the story of that branch's commits.
                    found(name, f"runtime files {path} belong to no worker record, but "
                                f"{still} still exists: kept", None)
                else:
                    found(name, f"runtime files {path} belong to no worker", "delete them",
                          partial(shutil.rmtree, path))
    if any(f.repaired for f in findings):  # the repairs above may have dropped records
        entries = store.all_entries(repo)
    for lease in leases.gone(repo, entries):
        found(lease.worker, f"{lease.describe()} are leased to a worker that is gone",
              "give them back", partial(leases.give_back, lease))
    prunable = worktrees.prunable(repo)
    if prunable:
        found(None, "prunable worktree administration: " + "; ".join(prunable),
              "git worktree prune", lambda: worktrees.prune(repo))
    return findings


def _check_entry(repo: Repo, reality: probe.Reality, entry: store.Entry,
                 found: Callable[..., None]) -> None:
    r = entry.record
    if r.owner is not None:
        if recovery.is_abandoned(r) and r.owner.get("action") == "rm":
            found(r.id, "rm was interrupted (its process is gone)", "finish the removal",
                  partial(removal.finish_interrupted, repo, entry))
        elif recovery.is_abandoned(r) and r.owner.get("action") == "start":
            found(r.id, "start was interrupted (its process is gone)",
                  "end what it launched and give the worker back its state",
                  partial(recovery.abandon_start, repo, entry))
        elif recovery.is_abandoned(r):
            found(r.id, "spawn was interrupted (its process is gone)",
                  "finish the rollback and drop the record",
                  partial(recovery.abandon_spawn, repo, entry))
        return
    seen = probe.observe(reality, r)
    code = probe.exit_status(repo, r.id)
    if r.state in RUNNING and code is not None:
        found(r.id, f"the agent exited {code}, but the record says {r.state}",
              "record the exit", partial(_record_exit, repo, r.id, code))
    elif seen.state == State.VANISHED:
        found(r.id, "the agent's process is gone without recording an exit",
              "mark it failed (exit code unknown)",
              lambda: store.set_state(repo, r.id, State.FAILED,
                                      "fsck: agent process gone, exit code unknown"))
    runtime = RuntimeDir.of(repo, r.id).path
    if seen.state not in RUNNING and recovery.agent_started(runtime, r):
        # The agent has ended; what it started must not outlive it unseen.
        who = probe.worker(repo, r)
        left = worker_processes.leftovers(who, everywhere=False, table=reality.processes())
        if left:
            found(r.id, f"its agent has ended, but {worker_processes.describe(left)} it "
                        "started still run", "end them",
                  partial(_end_leftovers, who))
    branch_missing = reality.ref(r.branch) is None
    worktree_missing = not os.path.isdir(r.worktree)
    if branch_missing and worktree_missing:
        found(r.id, "both its branch and its worktree are gone", "drop the record",
              lambda: store.forget(repo, r.id, entry.oid))
    elif worktree_missing:
        found(r.id, f"worktree {r.worktree} is missing",
              f"recreate it from branch {refnames.short(r.branch)}",
              lambda: _recreate_worktree(repo, r))
    elif branch_missing:
        found(r.id, f"branch {refnames.short(r.branch)} is missing (its worktree remains)", None)
    else:
        for p in seen.problems:
            if p.startswith("worktree"):
                found(r.id, p, None)
    admin = None if worktree_missing else reality.admin_dirs.find(r.worktree)
    changed = admin and worktrees.config_changed(admin, runtime)
    if admin and changed:
        found(r.id, worktrees.ConfigChanged(r.worktree, changed).message,
              "restore what git-worker wrote", partial(worktrees.restore_config, admin, runtime))


def _check_shared(entries: list[store.Entry], found: Callable[..., None]) -> None:
    """Records that name the same branch or worktree: one of them is not genuine (a copy,
    a forgery). Nothing is repaired: rm and --repair leave what another record names."""
    by_branch: dict[str, list[str]] = {}
    by_worktree: dict[str, list[str]] = {}
    for e in entries:
        by_branch.setdefault(e.record.branch, []).append(e.record.id)
        by_worktree.setdefault(os.path.realpath(e.record.worktree), []).append(e.record.id)
    for what, groups in (("branch", by_branch), ("worktree", by_worktree)):
        for name, ids in sorted(groups.items()):
            if len(ids) > 1:
                shown = refnames.short(name) if what == "branch" else name
                who = ", ".join(f"'{i}'" for i in sorted(ids))
                found(None, f"workers {who} name the same {what} {shown}", None)


def _still_there(repo: Repo, branch: str, worktree: str) -> str | None:
    """What of a worker without a record is still there: its branch, or its worktree (at
    the default place, or wherever a worktree has that branch checked out)."""
    branch_ref = refnames.HEADS + branch
    if repo.read_ref(branch_ref) is not None:
        return f"its branch {branch}"
    if os.path.lexists(worktree):
        return f"its worktree {worktree}"
    holders = worktrees.holders(repo, branch_ref)
    return f"its worktree {holders[0]}" if holders else None


def _lock_owner(repo: Repo, config: config_mod.Config, path: str) -> str | None:
    """The worker whose branch or record a lock file locks, if any."""
    ref = os.path.relpath(path, repo.common_dir).removesuffix(stale_git_locks.SUFFIX)
    for prefix in (refnames.REGISTRY, refnames.HEADS + config.branch_prefix):
        if ref.startswith(prefix) and "/" not in ref[len(prefix):]:
            return ref[len(prefix):]
    return None


def _move_aside(path: str) -> list[str]:
    """A symlink goes (what it points to stays); a file is renamed, kept for a human."""
    if os.path.islink(path):
        os.unlink(path)
        return [f"removed the symlink {path}"]
    aside = f"{path}.not-a-directory.{os.getpid()}"
    os.rename(path, aside)
    return [f"moved {path} to {aside}"]


def _record_exit(repo: Repo, worker_id: str, code: int) -> list[str]:
    review_failed = lifecycle.record_exit(repo, worker_id, code)
    if review_failed is None:
        return []
    return [f"recorded the exit; its review could not run: {review_failed}"]


def _end_leftovers(who: worker_processes.Worker) -> list[str]:
    ended = worker_processes.end(who, spare_runner=True)  # a finishing runner: let it finish
    return [f"ended {worker_processes.describe(ended)}"] if ended else []


def _recreate_worktree(repo: Repo, r: Record) -> None:
    if worktrees.find_admin_dir(repo, r.worktree):
        worktrees.prune(repo)
    tip = repo.read_ref(r.branch)
    assert tip is not None
    worktrees.add(repo, r.worktree, r.branch, tip)


def _check_team(repo: Repo, config: config_mod.Config,
                found: Callable[..., None]) -> None:
    """With worker.remote: ids another host holds on the remote too (both records kept),
    and records of ours not published there (offline when they changed)."""
    from git_worker import team

    settings = team.settings(repo, config)
    if settings is None:
        return
    view = team.view(repo, repo.ref_table(refnames.REGISTRY, refnames.TEAM), team.remote_of(repo))
    if view is None:
        return
    for worker_id, theirs in sorted(view.conflicts.items()):
        kept = refnames.team(settings.remote, worker_id)
        found(worker_id, f"conflict: {settings.remote} holds another '{worker_id}', by "
                         f"{team.holder(theirs)} (kept in {kept}); this clone's record of it "
                         "is not published", None)
    for worker_id in view.unpublished:
        found(worker_id, f"not published to {settings.remote}", "publish it",
              partial(team.publish, repo, settings, [worker_id]))


def needs_you(f: Finding) -> str:
    """What a human does about a finding no repair fixes."""
    if f.problem.startswith("conflict: "):
        return (f"two hosts hold '{f.id}': keep the work of this one under another id "
                f"(its branch stays: git worker rm --keep-branch {f.id}, then spawn it anew "
                "from that branch), or have the other host remove theirs, then: "
                "git worker publish")
    if f.problem.startswith("lock "):
        path = f.problem.split(" ")[1]
        return f"if no git command is running, delete it: rm {path}"
    if f.problem.startswith("unreadable registry record"):
        return (f"look at it (git log refs/workers/{f.id}), then drop it: "
                f"git update-ref -d refs/workers/{f.id}")
    if "has no worker record" in f.problem:
        return "merge or delete the branch with plain git"
    if "name the same" in f.problem:
        return ("compare their histories (git worker show ID --history); git worker rm the "
                "one that is not genuine: the branch and worktree stay with the other")
    if f.problem.startswith("runtime files") and f.problem.endswith(": kept"):
        return (f"they are that branch's agent log and prompt; delete {f.id}'s runtime "
                "directory yourself once you no longer need them")
    if "belongs to no worker" in f.problem:
        return "move or delete the directory"
    if "branch" in f.problem and "missing" in f.problem:
        return "recreate the branch, or git worker rm --force"
    return "inspect it, then git worker rm --force if it is no longer wanted"
