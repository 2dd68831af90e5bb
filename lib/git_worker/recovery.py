"""Finishing what a dead spawner left half-done, and the careful deletes that undo needs.

A branch or worktree is removed here only when it is provably the one spawn created and
nothing has been done with it since: a branch still at the base OID spawn set and checked
out nowhere else; a worktree whose administration names the record's path.
"""

from __future__ import annotations

import os

from git_worker import processes, worker_processes, worktrees
from git_worker.registry import store
from git_worker.registry.record import Corrupt, Record, State
from git_worker.registry.runtime import RuntimeDir
from git_worker.registry.store import Entry
from git_worker.repo import Repo

# typing only for annotations: importing it costs every spawn ~3 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def is_abandoned(record: Record) -> bool:
    """A record whose owner (a spawn or rm) is certainly gone (unknown is not gone)."""
    return record.owner is not None and processes.alive(record.owner) is False


class Shared:
    """Which other records name the branch or the worktree of a record.

    A record is anyone's to write (any process that can write refs), so one may name
    another worker's branch and worktree: removing or rolling back that record must leave
    them to the worker that also names them.
    """

    def __init__(self, branch: list[str], worktree: list[str]) -> None:
        self.branch = branch  # ids of the other records naming the same branch
        self.worktree = worktree  # … the same worktree (compared as real paths)


def shared_with(repo: Repo, record: Record,
                entries: list[Entry | Corrupt] | None = None) -> Shared:
    """``entries``: every record, if the caller has just read them (all_entries)."""
    branch, worktree = [], []
    realpath = worktrees.RealPaths()  # the worktrees' common parents, resolved once
    own_path = realpath(os.path.abspath(record.worktree))
    for item in store.all_entries(repo) if entries is None else entries:
        if not isinstance(item, Entry) or item.record.id == record.id:
            continue
        other = item.record
        if other.branch == record.branch:
            branch.append(other.id)
        if realpath(os.path.abspath(other.worktree)) == own_path:
            worktree.append(other.id)
    return Shared(branch, worktree)


def named_too(what: str, ids: list[str]) -> str:
    """'kept …: worker 'w1' names it too' (for rm and fsck --repair to say)."""
    who = ", ".join(f"'{i}'" for i in ids)
    if len(ids) == 1:
        return f"kept {what}: worker {who} names it too"
    return f"kept {what}: workers {who} name it too"


def delete_new_branch(repo: Repo, branch_ref: str, oid: str, own_worktree: str) -> bool:
    """Delete ``branch_ref`` if it is still at ``oid`` and no other worktree has it."""
    if repo.read_ref(branch_ref) != oid:
        return False
    for holder in worktrees.holders(repo, branch_ref):
        if os.path.normpath(holder) != os.path.normpath(own_worktree):
            return False
    return repo.delete_ref(branch_ref, oid, "git-worker: spawn rolled back")


def stop_launched(runtime_dir: str, launcher: dict[str, Any]) -> list[str]:
    """End an agent a spawn (or start) had launched, and every process it started; returns
    what was ended, said for a user.

    The launcher's record may not have reached the registry (the spawner died right after
    launching), so the runner's own record of the agent in the runtime dir counts too.
    """
    who = worker_processes.Worker(os.path.basename(runtime_dir), runtime_dir, launcher)
    ended = worker_processes.end(who)
    return [f"ended {worker_processes.describe(ended)}"] if ended else []


def agent_started(runtime_dir: str, record: Record) -> bool:
    return bool(record.launcher.get("pid")) or os.path.exists(RuntimeDir(runtime_dir).agent_json)


def abandon_spawn(repo: Repo, entry: Entry) -> list[str]:
    """Undo an interrupted spawn and drop its record. Returns what was done (nothing when
    the record changed since ``entry`` was read: then it was not abandoned).

    If there is work (commits on the branch, changes in the worktree: the agent's, or
    anyone's who used the worktree since), nothing is deleted: the record is kept as
    `failed` so the work can be reviewed, merged or removed like any other worker's.
    """
    # Taken over first, from exactly the version that was judged abandoned: its spawner
    # may have finished in between (the record `ready`, its owner cleared) and exited
    # since, and then its worktree is a worker's, not a leftover. Only a record still as
    # read is ours to undo. This process owns the rollback now (as the spawn's: if it dies
    # too, the next repair finds that owner gone and takes over again).
    def take(r: Record) -> None:
        r.owner = processes.identity("spawn")

    taken = store.take(repo, entry, take, "spawn interrupted; rolling back")
    if taken is None:
        return []
    entry, done = taken, []
    record = entry.record
    runtime = RuntimeDir.of(repo, record.id).path
    started = agent_started(runtime, record)
    if started:
        done.extend(stop_launched(runtime, record.launcher) or ["the agent had ended"])
    # Work may be there even if no agent started: someone may have used the worktree
    # between the crash and this repair. Whoever made it, it is never deleted here. A
    # checkout the spawner left running is not work: it is waited for first.
    worktrees.wait_for_checkout(repo, record.worktree)
    if _has_work(repo, record):
        def keep(r: Record) -> None:
            r.state, r.owner = State.FAILED, None

        store.update(repo, record.id, keep, "spawn interrupted; its worktree or branch "
                                            "holds work")
        done.append("kept its work (state failed)")
        return done
    shared = shared_with(repo, record)
    admin = worktrees.find_admin_dir(repo, record.worktree)
    if shared.worktree:
        done.append(named_too(f"worktree {record.worktree}", shared.worktree))
    elif admin is not None and worktrees.head_branch(admin) == record.branch:
        import shutil  # not at module level: ~3 ms of every spawn before its checkout

        if os.path.isdir(record.worktree) and worktrees.admin_dir_of(record.worktree) == admin:
            shutil.rmtree(record.worktree)
        shutil.rmtree(admin)
        done.append(f"removed worktree {record.worktree}")
    elif os.path.isdir(record.worktree) and not os.listdir(record.worktree):
        os.rmdir(record.worktree)  # created, killed before anything was written into it
        done.append(f"removed empty directory {record.worktree}")
    if shared.branch:
        done.append(named_too(f"branch {record.branch}", shared.branch))
    elif delete_new_branch(repo, record.branch, record.base["oid"], record.worktree):
        done.append(f"deleted branch {record.branch}")
    before = record.task.get("bd_before")
    if record.task.get("claimed") and isinstance(before, dict):
        done.append(_release_claim(repo, record.id, before))
    if store.forget(repo, record.id, entry.oid):
        done.append("dropped the spawning record")
    return done


def abandon_start(repo: Repo, entry: Entry) -> list[str]:
    """Undo an interrupted `git worker start`: end what it launched, give the worker back
    the state it had (its worktree and branch were never touched)."""
    record, done = entry.record, []
    runtime = RuntimeDir.of(repo, record.id).path
    done.extend(stop_launched(runtime, record.launcher))
    before = str((record.owner or {}).get("from") or State.STOPPED)

    def back(r: Record) -> None:
        r.state, r.owner = before, None

    store.update(repo, record.id, back, "start interrupted; undone")
    done.append(f"gave it back its state ({before})")
    return done


def _has_work(repo: Repo, record: Record) -> bool:
    tip = repo.read_ref(record.branch)
    if tip is not None and tip != record.base["oid"]:
        return True
    if os.path.isdir(record.worktree):
        try:
            return bool(worktrees.dirty_paths(repo, record.worktree,
                                              RuntimeDir.of(repo, record.id).path))
        except Exception:
            return True  # can't tell: keep it
    return False

def _release_claim(repo: Repo, issue_id: str, before: dict[str, Any]) -> str:
    """Give a bd issue the interrupted spawn had claimed back its old status/assignee."""
    from git_worker import tracker
    from git_worker.config import Config
    from git_worker.errors import WorkerError

    issue = tracker.Issue(issue_id, issue_id, status=str(before.get("status") or "open"),
                          assignee=str(before.get("assignee") or ""))
    try:
        tracker.release(repo, issue, timeout=Config.load(repo.common_dir).tracker_timeout)
    except WorkerError as e:
        return f"could not give bd issue {issue_id} back ({e.message}); see bd show {issue_id}"
    return f"gave bd issue {issue_id} back (status {issue.status})"
