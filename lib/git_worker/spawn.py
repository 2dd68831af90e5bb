"""The spawn transaction: registry claim, branch, worktree, files, agent — all or nothing.

Each step pushes its own undo; any failure runs them in reverse, so a failed spawn leaves
the repository exactly as it found it. A spawner killed mid-way leaves a `spawning` record
whose owner process is gone: `recovery.abandon_spawn` (run by `fsck --repair` and by the next
spawn of that id) finishes the rollback.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field

from git_worker import (
    agents,
    copies,
    failpoints,
    launchers,
    leases,
    lifecycle,
    processes,
    prompt,
    recovery,
    refnames,
    registry,
    team,
    tracker,
    worktrees,
)
from git_worker.base import Base
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.git import clean_env
from git_worker.registry import Record
from git_worker.repo import Repo
from git_worker.undo import UndoLog, transaction

_SETUP_HINT = "fix the command, or remove it: git config --unset-all worker.setup"
STEPS = ("claim", "branch", "worktree", "files", "setup", "launch")


@dataclass
class Task:
    id: str
    title: str | None = None
    description: str = ""
    source: str = "cli"  # "bd" when the text came from the tracker
    issue: tracker.Issue | None = None  # the bd issue, claimed when the worker starts
    extra: str = ""  # -d TEXT given alongside a bd issue: added to its description


@dataclass
class Plan:
    """What every worker of one `spawn` command shares."""

    base: Base
    branch_prefix: str
    worktree_root: str
    agent: str
    model: str | None
    launch: bool
    template: prompt.Template = field(default_factory=prompt.builtin)
    launcher: str = "detached"
    max_concurrent: int | None = None
    queue: bool = False  # over max_concurrent: queue instead of failing
    review: bool | None = None  # spawn --review/--no-review; None: worker.review decides
    tracker_timeout: float = tracker.TIMEOUT
    team_settings: team.Settings | None = None  # worker.remote: claims and changes published there
    # ids spawned while the team's remote could not be reached, and why (for the warning)
    offline: dict[str, team.Unreachable] = field(default_factory=dict)


def worktree_root(repo: Repo, config: Config) -> str:
    """worker.worktreeDir, absolute; refused when it points into the git directory."""
    setting = config.string("worker.worktreeDir")
    name = os.path.basename(repo.main_worktree.rstrip("/")) or "repo"
    if name == ".git":  # bare repository named like its .git
        name = os.path.basename(os.path.dirname(repo.main_worktree)) or "repo"
    raw = setting or f"../{name.removesuffix('.git')}.workers"
    root = os.path.normpath(os.path.join(repo.main_worktree, os.path.expanduser(raw)))
    common = os.path.realpath(repo.common_dir)
    real = os.path.realpath(root)
    if real == common or real.startswith(common + os.sep):
        raise WorkerError(
            f"worker.worktreeDir ({raw}) points into the git directory {repo.common_dir}",
            hint="choose a directory outside .git: git config worker.worktreeDir ../my.workers",
        )
    existing = real
    while not os.path.exists(existing):  # the nearest part of it that exists already
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise WorkerError(
            f"worker.worktreeDir ({raw}) cannot hold worktrees: {existing} is a file",
            hint="point it at a directory: git config worker.worktreeDir ../my.workers",
        )
    return root


def worktree_path(root: str, worker_id: str) -> str:
    path = os.path.normpath(os.path.join(root, worker_id))
    if os.path.dirname(path) != root:  # ids are validated; this guards the invariant itself
        raise WorkerError(f"worktree path for '{worker_id}' would leave {root}")
    return path


def spawn(repo: Repo, config: Config, task: Task, plan: Plan) -> Record:
    """Create one worker; on any failure, undo exactly what this call created, then raise."""
    # team.deferred: the record changes a few times here; it is published once, at the end.
    with team.deferred(), transaction() as undo:
        record = _spawn(repo, config, task, plan, undo)
    if plan.team_settings is not None and task.id not in plan.offline:
        try:
            team.publish(repo, plan.team_settings, [task.id])
        except team.Unreachable as e:
            plan.offline[task.id] = e  # claimed there; its later states are pending
    return record


def _spawn(repo: Repo, config: Config, task: Task, plan: Plan, undo: UndoLog) -> Record:
    branch_ref = refnames.branch(plan.branch_prefix, task.id)
    path = worktree_path(plan.worktree_root, task.id)
    record = Record(
        id=task.id,
        state="spawning",
        branch=branch_ref,
        base=plan.base.as_json(),
        worktree=path,
        agent=plan.agent if plan.launch else None,
        model=plan.model,
        task={"title": task.title, "source": task.source},
        review={"status": None, "at": None, "auto": plan.review},
        owner=processes.identity("spawn"),
        clone=plan.team_settings.identity() if plan.team_settings else None,
    )

    # 1. claim refs/workers/<id>: from here on, this id is ours alone — and, with a team
    # remote, claimed there too before anything else is made (another host may hold it).
    entry = _claim(repo, record)
    if plan.team_settings is not None:
        settings = plan.team_settings
        # Runs after the local claim's undo: with the record gone here, publishing takes
        # the claim off the remote (pending if the remote cannot be reached then).
        undo.push("team claim", lambda: team.publish(repo, settings, [task.id]))
    undo.push("claim", lambda: _unclaim(repo, task.id))
    if plan.team_settings is not None:
        unreachable = team.claim(repo, plan.team_settings, entry)
        if unreachable is not None:
            plan.offline[task.id] = unreachable
    runtime = registry.make_runtime_dir(repo, task.id)  # a removed namesake's files go
    undo.push("runtime dir", lambda: shutil.rmtree(runtime, ignore_errors=True))
    failpoints.hit("spawn.claim")
    entry = leases.take(repo, config, entry, undo)  # its slot and ports, given back on undo

    # 2. the branch, created only if it doesn't exist (a branch is never reused silently).
    if not repo.create_ref(branch_ref, plan.base.oid, f"git-worker: spawn {task.id}"):
        raise WorkerError(
            f"branch {refnames.short(branch_ref)} already exists",
            hint=f"delete or rename it (git branch -m {refnames.short(branch_ref)} <new>), "
                 "or set another git config worker.branchPrefix",
        )
    undo.push("branch", lambda: recovery.delete_new_branch(repo, branch_ref, plan.base.oid, path))
    failpoints.hit("spawn.branch")

    # 3. the worktree.
    created = worktrees.add(repo, path, branch_ref, plan.base.oid)
    undo.push("worktree", lambda: worktrees.discard_new(created))
    failpoints.hit("spawn.worktree")
    entry = _steps(repo, entry, ["claim", "branch", "worktree"], "spawn: worktree created")

    # 4. files: configured untracked files, the rendered prompt.
    copied = copies.Copied(path)
    undo.push("copies", lambda: copies.undo(copied))
    copies.copy(repo, config, path, copied)
    if copied.written:
        copies.save(repo, runtime, copied)
        if copies.exclude(repo, created.admin_dir, runtime):
            undo.push("worktreeConfig", lambda: copies.unexclude(repo, created.admin_dir))
    registry.write_atomically(os.path.join(runtime, "prompt.md"),
                              prompt.render(plan.template, _prompt_values(entry.record, task)))
    failpoints.hit("spawn.files")

    # 5. setup commands, from git config only (never from files in the repository).
    _run_setup(config, path, runtime, entry.record)
    failpoints.hit("spawn.setup")

    # 6. the agent: started now, or queued when worker.maxConcurrent agents already run.
    # The lock keeps concurrent spawns (and runners starting queued workers) from counting
    # the same free slot twice.
    launcher: dict[str, object] = {"kind": None}
    queued = False
    if plan.launch:
        with lifecycle.queue_lock(repo):
            running = lifecycle.over_limit(repo, plan.max_concurrent, exclude=task.id)
            if running is not None and not plan.queue:
                raise WorkerError(
                    f"worker.maxConcurrent is {plan.max_concurrent} and {len(running)} "
                    f"worker(s) are running ({', '.join(running)})",
                    hint="wait for one to finish, stop one (git worker stop ID), or pass "
                         "--queue to start this one when a slot frees up",
                )
            queued = running is not None
            _claim_task(repo, task, plan, undo)
            if queued:
                launcher = {"kind": plan.launcher, "socket": launchers.caller_socket()
                            if plan.launcher == "tmux" else None}
            else:
                ctx = agents.Context(task.id, runtime, repo.common_dir, path, branch_ref,
                                     env=leases.environment(config, entry.record))
                inv = agents.invocation(config, plan.agent, model=plan.model, ctx=ctx)
                if inv.excluded:
                    pattern = inv.excluded
                    undo.push("exclude", lambda: agents.unexclude(repo.common_dir, pattern))
                launcher = launchers.launch(plan.launcher, inv, worker_id=task.id,
                                            worktree=path, runtime_dir=runtime,
                                            common_dir=repo.common_dir)
                undo.push("launch", lambda: recovery.stop_launched(runtime, launcher))
    failpoints.hit("spawn.launch")

    started = plan.launch and not queued
    state = "running" if started else "queued" if queued else "ready"

    def finish(r: Record) -> None:
        r.launcher = dict(launcher)
        r.spawn_steps = list(STEPS) if started else list(STEPS[:-1])
        r.owner = None
        r.task["claimed"] = bool(task.issue and (plan.launch or queued))
        r.task.pop("bd_before", None)  # the spawn is complete: nothing left to give back
        if r.state != "spawning":
            pass  # the agent has reported already (e.g. waiting): keep what it said
        elif started and r.exit_code is not None:  # a quick agent: it has exited already
            r.state = lifecycle.exit_state(r.exit_code)
        else:
            r.state = state

    entry = registry.update(repo, task.id, finish, f"spawn: {state}", current=entry)
    return entry.record


def _claim_task(repo: Repo, task: Task, plan: Plan, undo: UndoLog) -> None:
    """Claim the bd issue as the worker starts (or is queued to start), with its undo.

    A transaction step, not an afterthought: a claim bd refuses (someone else holds the
    issue) stops the spawn before an agent starts on a task that is not ours, and a launch
    that fails after the claim gives the issue back as it was.
    """
    issue = task.issue
    if issue is None:
        return
    if issue.status == "in_progress" and issue.assignee == tracker.actor():
        return  # already ours (e.g. a re-spawn): nothing to claim, nothing to give back
    tracker.claim(repo, issue, actor=tracker.actor(), timeout=plan.tracker_timeout)
    undo.push("bd claim", lambda: tracker.release(repo, issue, timeout=plan.tracker_timeout))

    # Recorded at once, with what to restore: if this spawner dies before it finishes,
    # recovery (fsck --repair, the next spawn of the id) gives the issue back too.
    def claimed(r: Record) -> None:
        r.task["claimed"] = True
        r.task["bd_before"] = {"status": issue.status, "assignee": issue.assignee}

    registry.update(repo, task.id, claimed, "spawn: bd issue claimed")
    failpoints.hit("spawn.bd-claim")


def _prompt_values(record: Record, task: Task) -> dict[str, str]:
    issue = task.issue
    description = issue.description if issue else task.description
    if issue and task.extra:
        description = f"{description.strip()}\n\n{task.extra.strip()}".strip()
    design = issue.design if issue else ""
    acceptance = issue.acceptance_criteria if issue else ""
    notes = issue.notes if issue else ""
    return {
        "id": record.id,
        "title": (issue.title if issue else task.title) or record.id,
        "description": description,
        "design": design,
        "acceptance_criteria": acceptance,
        "notes": notes,
        "task_details": prompt.details(description=description, design=design,
                                       acceptance_criteria=acceptance, notes=notes),
        "source": task.source,
        "branch": refnames.short(record.branch),
        "base": record.base["name"],
        "base_oid": record.base["oid"],
        "base_oid_short": record.base["oid"][:12],
        "worktree": record.worktree,
    }


def _claim(repo: Repo, record: Record) -> registry.Entry:
    try:
        return registry.claim(repo, record)
    except WorkerError:
        existing = registry.read(repo, record.id)
        if existing is None:  # removed in between: try once more
            return registry.claim(repo, record)
        owner = existing.record.owner or {}
        if recovery.is_abandoned(existing.record) and owner.get("action") == "spawn":
            recovery.abandon_spawn(repo, existing)
            return registry.claim(repo, record)
        raise WorkerError(
            f"worker '{record.id}' already exists (state {existing.record.state}, "
            f"branch {refnames.short(existing.record.branch)})",
            hint=f"git worker show {record.id} says what it holds; to start over, remove it "
                 f"first: git worker rm {record.id}",
        ) from None


def _unclaim(repo: Repo, worker_id: str) -> None:
    entry = registry.read(repo, worker_id)
    if entry is not None:
        registry.remove(repo, worker_id, entry.oid)


def _steps(repo: Repo, entry: registry.Entry, steps: list[str], event: str) -> registry.Entry:
    def change(r: Record) -> None:
        r.spawn_steps = steps

    return registry.update(repo, entry.record.id, change, event, current=entry)


def _run_setup(config: Config, worktree: str, runtime: str, record: Record) -> None:
    env = clean_env({"GIT_WORKER_ID": record.id, "GIT_WORKER_BRANCH": record.branch,
                     "GIT_WORKER_WORKTREE": worktree, "GIT_WORKER_BASE": record.base["name"],
                     **leases.environment(config, record)})
    log_path = os.path.join(runtime, "setup.log")
    for command in config.values("worker.setup"):
        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise WorkerError(f"worker.setup '{command}' is not valid shell words: {e}",
                              hint=_SETUP_HINT) from None
        with open(log_path, "ab", opener=registry.private) as log:
            log.write(f"$ {command}\n".encode())
            log.flush()
            try:
                code = subprocess.run(argv, cwd=worktree, env=env, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT, check=False).returncode
            except OSError as e:
                raise WorkerError(f"setup command '{command}' cannot run: {e.strerror}",
                                  hint=_SETUP_HINT) from None
        if code != 0:
            tail = _tail(log_path, 5)
            raise WorkerError(f"setup command '{command}' failed (exit {code})" +
                              (f":\n{tail}" if tail else ""),
                              hint=_SETUP_HINT)


def _tail(path: str, n: int) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(f.readlines()[-n:]).rstrip()
