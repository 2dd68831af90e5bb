"""The spawn transaction: registry claim, branch, worktree, files, agent — all or nothing.

Each step pushes its own undo; any failure runs them in reverse, so a failed spawn leaves
the repository exactly as it found it. A spawner killed mid-way leaves a `spawning` record
whose owner process is gone: `recovery.abandon_spawn` (run by `fsck --repair` and by the next
spawn of that id) finishes the rollback.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass

from git_worker import (
    agents,
    failpoints,
    launchers,
    lifecycle,
    processes,
    prompt,
    recovery,
    refnames,
    registry,
    worktrees,
)
from git_worker.base import Base
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.git import clean_env
from git_worker.registry import Record
from git_worker.repo import Repo
from git_worker.undo import UndoLog

_SETUP_HINT = "fix the command, or remove it: git config --unset-all worker.setup"
STEPS = ("claim", "branch", "worktree", "files", "setup", "launch")


@dataclass
class Task:
    id: str
    title: str | None = None
    description: str = ""
    source: str = "cli"


@dataclass
class Plan:
    """What every worker of one `spawn` command shares."""

    base: Base
    branch_prefix: str
    worktree_root: str
    agent: str
    model: str | None
    launch: bool


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
    return root


def worktree_path(root: str, worker_id: str) -> str:
    path = os.path.normpath(os.path.join(root, worker_id))
    if os.path.dirname(path) != root:  # ids are validated; this guards the invariant itself
        raise WorkerError(f"worktree path for '{worker_id}' would leave {root}")
    return path


def spawn(repo: Repo, config: Config, task: Task, plan: Plan) -> Record:
    """Create one worker; on any failure, undo exactly what this call created, then raise."""
    undo = UndoLog()
    try:
        return _spawn(repo, config, task, plan, undo)
    except BaseException as failure:
        problems = undo.rollback()
        if problems and isinstance(failure, WorkerError):
            failure.message += "\nrollback was incomplete: " + "; ".join(problems) + \
                "\n(run git worker fsck --repair)"
        raise


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
        owner=processes.identity("spawn"),
    )

    # 1. claim refs/workers/<id>: from here on, this id is ours alone.
    entry = _claim(repo, record)
    undo.push("claim", lambda: _unclaim(repo, task.id))
    runtime = registry.runtime_dir(repo, task.id)
    shutil.rmtree(runtime, ignore_errors=True)  # leftovers of a removed namesake
    os.makedirs(runtime)
    undo.push("runtime dir", lambda: shutil.rmtree(runtime, ignore_errors=True))
    failpoints.hit("spawn.claim")

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
    _copy_untracked(repo, config, path)
    with open(os.path.join(runtime, "prompt.md"), "w", encoding="utf-8") as f:
        f.write(prompt.render(entry.record, task.description))
    failpoints.hit("spawn.files")

    # 5. setup commands, from git config only (never from files in the repository).
    _run_setup(config, path, runtime, entry.record)
    failpoints.hit("spawn.setup")

    # 6. the agent.
    launcher: dict[str, object] = {"kind": None}
    if plan.launch:
        inv = agents.invocation(config, plan.agent, model=plan.model,
                                prompt_file=os.path.join(runtime, "prompt.md"))
        launcher = launchers.launch_detached(
            inv, worker_id=task.id, worktree=path, runtime_dir=runtime,
            common_dir=repo.common_dir,
        )
        undo.push("launch", lambda: recovery.stop_launched(runtime, launcher))
    failpoints.hit("spawn.launch")

    def finish(r: Record) -> None:
        r.launcher = dict(launcher)
        r.spawn_steps = list(STEPS) if plan.launch else list(STEPS[:-1])
        r.owner = None
        if not plan.launch:
            r.state = "ready"
        elif r.exit_code is not None:  # the agent was quick: it has exited already
            r.state = lifecycle.exit_state(r.exit_code)
        else:
            r.state = "running"

    entry = registry.update(repo, task.id, finish,
                            "spawn: running" if plan.launch else "spawn: ready", current=entry)
    return entry.record


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
            hint=f"remove it first: git worker rm {record.id}",
        ) from None


def _unclaim(repo: Repo, worker_id: str) -> None:
    entry = registry.read(repo, worker_id)
    if entry is not None:
        registry.remove(repo, worker_id, entry.oid)


def _steps(repo: Repo, entry: registry.Entry, steps: list[str], event: str) -> registry.Entry:
    def change(r: Record) -> None:
        r.spawn_steps = steps

    return registry.update(repo, entry.record.id, change, event, current=entry)


def _copy_untracked(repo: Repo, config: Config, dest: str) -> None:
    source = repo.main_worktree
    for pattern in config.values("worker.copy"):
        if os.path.isabs(pattern) or ".." in pattern.split("/"):
            raise WorkerError(f"worker.copy pattern '{pattern}' must stay inside the repository")
        matches = glob.glob(pattern, root_dir=source, recursive=True, include_hidden=True)
        for found in sorted(matches):
            src, dst = os.path.join(source, found), os.path.join(dest, found)
            if found.split(os.sep)[0] == ".git" or os.path.lexists(dst):
                continue  # never overwrite what the checkout put there
            if os.path.isdir(src) and not os.path.islink(src):
                shutil.copytree(src, dst, symlinks=True)
            else:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(src, dst, follow_symlinks=False)


def _run_setup(config: Config, worktree: str, runtime: str, record: Record) -> None:
    env = clean_env({"GIT_WORKER_ID": record.id, "GIT_WORKER_BRANCH": record.branch,
                     "GIT_WORKER_WORKTREE": worktree, "GIT_WORKER_BASE": record.base["name"]})
    log_path = os.path.join(runtime, "setup.log")
    for command in config.values("worker.setup"):
        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise WorkerError(f"worker.setup '{command}' is not valid shell words: {e}") from None
        with open(log_path, "ab") as log:
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
