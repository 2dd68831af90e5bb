"""git worker fsck: find (and with --repair, fix) drift between registry, branches and
worktrees. Repairs never delete work: branches and directories that may hold some are
reported, not removed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

from git_worker import config as config_mod
from git_worker import (
    lifecycle,
    probe,
    recovery,
    refnames,
    registry,
    removal,
    spawn,
    worker_processes,
    worktrees,
)
from git_worker.errors import WorkerError
from git_worker.repo import Repo


@dataclass
class Finding:
    id: str | None
    problem: str
    repair: str | None  # what --repair does (or did); None: needs a human
    repaired: bool = False


def run(repo: Repo, config: config_mod.Config, *, repair: bool, as_json: bool) -> int:
    findings = check(repo, config, repair=repair)
    if as_json:
        from git_worker import output

        output.print_json([asdict(f) for f in findings])
    elif not findings:
        print("ok: registry, branches and worktrees agree")
    else:
        for f in findings:
            who = f"{f.id}: " if f.id else ""
            if f.repaired:
                print(f"repaired: {who}{f.problem} ({f.repair})")
            elif f.repair:
                print(f"problem: {who}{f.problem} (--repair would: {f.repair})")
            else:
                print(f"problem: {who}{f.problem} (needs you: {_manual(f)})")
    return 1 if any(not f.repaired for f in findings) else 0


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
        findings.append(finding)

    known_ids = set()
    reality = probe.Reality.read(repo)
    for item in registry.all_entries(repo):
        known_ids.add(item.id if isinstance(item, registry.Corrupt) else item.record.id)
        if isinstance(item, registry.Corrupt):
            restorable = registry.salvage(repo, item) is not None
            found(item.id, f"unreadable registry record ({item.reason})",
                  "restore the last readable state from its history" if restorable else None,
                  partial(registry.restore_last_readable, repo, item))
            continue
        _check_entry(repo, reality, item, found)

    queued = [e.record for e in registry.all_entries(repo)
              if isinstance(e, registry.Entry) and e.record.state == "queued"]
    if queued and not lifecycle.queue_busy(repo):
        problem = lifecycle.stalled(queued, len(lifecycle.running_ids(repo)),
                                    config.max_concurrent)
        if problem:
            oldest = min(queued, key=lifecycle.queue_order).id
            found(oldest, problem.split(";")[0], "start the queue, oldest first",
                  lambda: [f"started {', '.join(lifecycle.start_queued(repo)) or 'nothing'}"])

    prefix = config.branch_prefix
    for name in sorted(repo.refs_under(refnames.HEADS + prefix)):
        if name not in known_ids and not removal.kept_on_purpose(
                repo, refnames.HEADS + prefix + name, name):
            found(None, f"branch {prefix}{name} has no worker record", None)
    root = spawn.worktree_root(repo, config)
    if os.path.isdir(root):
        for name in sorted(os.listdir(root)):
            if name not in known_ids:
                found(None, f"{os.path.join(root, name)} is in worker.worktreeDir "
                            "but belongs to no worker", None)
    runtime_root = os.path.join(repo.common_dir, "workers")
    if os.path.isdir(runtime_root):
        for name in sorted(os.listdir(runtime_root)):
            if name not in known_ids:
                path = os.path.join(runtime_root, name)
                found(name, f"runtime files {path} belong to no worker", "delete them",
                      partial(shutil.rmtree, path))
    prunable = worktrees.prunable(repo)
    if prunable:
        found(None, "prunable worktree administration: " + "; ".join(prunable),
              "git worktree prune", lambda: worktrees.prune(repo))
    return findings


def _check_entry(repo: Repo, reality: probe.Reality, entry: registry.Entry,
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
    if r.state in ("running", "waiting") and code is not None:
        found(r.id, f"the agent exited {code}, but the record says {r.state}",
              "record the exit", lambda: lifecycle.record_exit(repo, r.id, code))
    elif seen.state == "vanished":
        found(r.id, "the agent's process is gone without recording an exit",
              "mark it failed (exit code unknown)",
              lambda: registry.set_state(repo, r.id, "failed",
                                         "fsck: agent process gone, exit code unknown"))
    runtime = registry.runtime_dir(repo, r.id)
    if seen.state not in lifecycle.RUNNING and recovery.agent_started(runtime, r):
        # The agent has ended; what it started must not outlive it unseen.
        who = probe.worker(repo, r)
        left = worker_processes.leftovers(who, everywhere=False, table=reality.processes())
        if left:
            found(r.id, f"its agent has ended, but {worker_processes.describe(left)} it "
                        "started still run", "end them",
                  partial(_end_leftovers, who))
    branch_missing = repo.read_ref(r.branch) is None
    worktree_missing = not os.path.isdir(r.worktree)
    if branch_missing and worktree_missing:
        found(r.id, "both its branch and its worktree are gone", "drop the record",
              lambda: registry.forget(repo, r.id, entry.oid))
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


def _end_leftovers(who: worker_processes.Worker) -> list[str]:
    ended = worker_processes.end(who, spare_runner=True)  # a finishing runner: let it finish
    return [f"ended {worker_processes.describe(ended)}"] if ended else []


def _recreate_worktree(repo: Repo, r: registry.Record) -> None:
    if worktrees.find_admin_dir(repo, r.worktree):
        worktrees.prune(repo)
    tip = repo.read_ref(r.branch)
    assert tip is not None
    worktrees.add(repo, r.worktree, r.branch, tip)


def _manual(f: Finding) -> str:
    if f.problem.startswith("unreadable registry record"):
        return (f"look at it (git log refs/workers/{f.id}), then drop it: "
                f"git update-ref -d refs/workers/{f.id}")
    if "has no worker record" in f.problem:
        return "merge or delete the branch with plain git"
    if "belongs to no worker" in f.problem:
        return "move or delete the directory"
    if "branch" in f.problem and "missing" in f.problem:
        return "recreate the branch, or git worker rm --force"
    return "inspect it, then git worker rm --force if it is no longer wanted"
