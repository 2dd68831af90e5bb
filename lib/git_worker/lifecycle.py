"""State transitions after spawn: the agent's exit, what the agent itself reports through
its hooks (waiting, done), a user's stop, and starting queued workers when slots free up
(worker.maxConcurrent). Each transition is one compare-and-swap registry update whose
commit message is the event; worker.notify hears about the ones a human cares about.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from contextlib import suppress

from git_worker import locks, worker_processes
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.git import clean_env
from git_worker.registry import store
from git_worker.registry.record import RUNNING, Record, State
from git_worker.registry.runtime import RuntimeDir, private, write_atomically
from git_worker.repo import Repo

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_STOP_GRACE = worker_processes.STOP_GRACE


def exit_state(code: int) -> str:
    return State.EXITED if code == 0 else State.FAILED


def record_exit(repo: Repo, worker_id: str, code: int) -> WorkerError | None:
    """Record the agent's exit; with worker.review, run the gate. Returns why the gate
    could not run, if it could not (recorded in the review too), for the caller to say."""
    def change(r: Record) -> None:
        r.exit_code = code
        # A spawning record stays so: its spawner sets the final state (or, if the
        # spawner died, recovery decides what to keep).
        if r.state in RUNNING:
            r.state = exit_state(code)

    entry = store.update(repo, worker_id, change, f"exited {code}")
    _clear_waiting(repo, worker_id)
    if entry.record.state in (State.EXITED, State.FAILED):
        notify(repo, entry.record, entry.record.state, f"exit code {code}")
    # worker.review true: the gate runs by itself once the agent has finished well.
    from git_worker import review

    return review.after_exit(repo, worker_id, code)


def record_agent_event(repo: Repo, worker_id: str, event: str, message: str = "") -> Record:
    """What the agent reported through its hooks: started, waiting, done, running."""
    marker = RuntimeDir.of(repo, worker_id).waiting
    text = f"agent: {event}" + (f": {message}" if message else "")

    def change(r: Record) -> None:
        # "spawning" too: a quick agent may report before spawn has recorded "running";
        # spawn then keeps the state it finds.
        if event in ("waiting", "done") and r.state in (*RUNNING, State.SPAWNING):
            r.state = State.WAITING  # done = its turn is over: it waits for a human (or exits)
        elif event == "running" and r.state == State.WAITING:
            r.state = State.RUNNING

    entry = store.update(repo, worker_id, change, text[:200])
    if entry.record.state == State.WAITING:
        write_atomically(marker, message + "\n")
    else:
        _clear_waiting(repo, worker_id)
    if event in ("waiting", "done"):
        notify(repo, entry.record, event, message)
    return entry.record


def _clear_waiting(repo: Repo, worker_id: str) -> None:
    with suppress(FileNotFoundError):
        os.remove(RuntimeDir.of(repo, worker_id).waiting)


def notify(repo: Repo, record: Record, event: str, message: str) -> None:
    """Run worker.notify (argv, no shell) in the background; its output goes to notify.log.

    The event and its text travel in environment variables, never through a shell.
    """
    # Run from the main worktree, like the review gate: a relative program path must not
    # name a file in the worker's worktree, which the agent writes.
    where = repo.main_worktree if os.path.isdir(repo.main_worktree) else repo.common_dir
    try:
        argv = Config.load(repo.common_dir).words("worker.notify")  # never the worktree's
    except WorkerError:
        return
    if not argv:
        return
    env = clean_env({"GIT_WORKER_ID": record.id, "GIT_WORKER_EVENT": event,
                     "GIT_WORKER_MESSAGE": message, "GIT_WORKER_WORKTREE": record.worktree,
                     "GIT_WORKER_BRANCH": record.branch, "GIT_WORKER_STATE": record.state})
    runtime = RuntimeDir.of(repo, record.id)
    try:
        with open(runtime.notify_log, "ab", opener=private) as log:
            subprocess.Popen(argv, cwd=where, env=env, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        try:
            with open(runtime.notify_log, "a", encoding="utf-8", opener=private) as log:
                log.write(f"worker.notify {argv[0]}: {e.strerror or e}\n")
        except OSError:
            pass


# --- stop --------------------------------------------------------------------------------


def stop(repo: Repo, worker_id: str) -> str:
    """End the worker's agent and every process it started, keep worktree and branch;
    returns what was done."""
    from git_worker import probe

    record = store.get(repo, worker_id).record
    if record.state == State.QUEUED:
        store.set_state(repo, worker_id, State.STOPPED, "stopped (was queued)")
        return "stopped (it was queued; no agent had started)"
    who = probe.worker(repo, record)
    code = probe.exit_status(repo, worker_id)
    if record.state not in RUNNING or code is not None:
        # The agent has ended, but what it started may not have: those end now. Not its
        # runner, which may be recording the exit code this very moment.
        left = worker_processes.end(who, spare_runner=True)
        shown = probe.observe(probe.Reality.read(repo), record).state
        if left:
            return (f"not running ({shown}); ended {worker_processes.describe(left)} "
                    "it had left running")
        return f"not running ({shown}); nothing to stop"

    def mark(r: Record) -> None:
        if r.state in RUNNING:
            r.state = State.STOPPED

    store.update(repo, worker_id, mark, "stopped by user")
    _clear_waiting(repo, worker_id)
    # The runner (proven, not only named by the record) ignores SIGTERM and stays to record
    # the agent's exit code; every other process of the worker (the agent, what it
    # started) gets TERM, then KILL.
    runner = record.launcher.get("pid")
    before = worker_processes.find(who)
    runner_was_alive = any(s.pid == runner for s in before)
    # What the agent had left running already (their parent gone before the stop), as
    # opposed to what ends with it now.
    orphans = {s.pid for s in worker_processes.orphans(who, before)}
    ended = worker_processes.end(who, spare_runner=True)
    if runner_was_alive and _wait_for_exit(repo, worker_id, _STOP_GRACE) is None:
        killed = worker_processes.end(who, 1.0)  # a runner that cannot record: ended too
        ended += killed
        if killed and _wait_for_exit(repo, worker_id, 1.0) is None:
            write_atomically(RuntimeDir(who.runtime_dir).exit, f"{128 + signal.SIGKILL}\n")
            record_exit(repo, worker_id, 128 + signal.SIGKILL)
    elif runner_was_alive:
        # It has recorded the exit; it still tells worker.notify and starts the queue.
        # Stop returns once it is done, so that an `rm` right after finds nothing running.
        _wait_for_runner(who, _STOP_GRACE)
    launcher = record.launcher
    if launcher.get("kind") == "tmux" and launcher.get("session"):
        from git_worker import launchers

        if launchers.session_alive(launcher.get("socket"), launcher["session"]):
            launchers.tmux(launcher.get("socket"), "kill-session", "-t", f"={launcher['session']}")
    start_queued(repo)
    code = probe.exit_status(repo, worker_id)
    if code is not None:
        said = f"stopped (agent exit code {code})"
    elif ended:
        said = "stopped (its runner was gone: the agent's exit code is unknown)"
    else:
        said = "stopped (no process of it was found)"
    left = [s for s in ended if s.pid in orphans]
    if left:
        said += f"; also ended {worker_processes.describe(left)} it had left running"
    return said


def _wait_for_runner(who: worker_processes.Worker, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while worker_processes.runner_alive(who) and time.monotonic() < deadline:
        time.sleep(0.05)


def _wait_for_exit(repo: Repo, worker_id: str, seconds: float) -> int | None:
    from git_worker import probe

    deadline = time.monotonic() + seconds
    while True:
        code = probe.exit_status(repo, worker_id)
        if code is not None or time.monotonic() > deadline:
            return code
        time.sleep(0.05)


# --- worker.maxConcurrent and the queue --------------------------------------------------


def running_ids(repo: Repo, exclude: str | None = None) -> list[str]:
    """Workers whose agent runs now: recorded running/waiting, no exit code, and not every
    process of theirs gone — or still spawning, with an agent already started (the spawn
    records "running" only after it lets go of the queue lock)."""
    from git_worker import probe

    found = []
    for entry in store.all_entries(repo):
        if not isinstance(entry, store.Entry) or entry.record.id == exclude:
            continue
        r = entry.record
        if r.state not in (*RUNNING, State.SPAWNING) or probe.exit_status(repo, r.id) is not None:
            continue
        alive = worker_processes.recorded_alive(probe.worker(repo, r))
        if alive is False or (r.state == State.SPAWNING and not alive):
            continue  # its runner and agent are gone (or not started): it holds no slot
        found.append(r.id)
    return found


def over_limit(repo: Repo, limit: int | None, exclude: str | None = None) -> list[str] | None:
    """The running ids when ``limit`` is reached, else None."""
    if limit is None:
        return None
    running = running_ids(repo, exclude)
    return running if len(running) >= limit else None


def queue(runtime_dir: str, launcher: dict[str, Any]) -> dict[str, Any]:
    """Put a worker in the queue: keep the environment it must start with (its spawner's,
    not that of whichever process frees a slot) private to its owner, never in the
    registry; returns its launcher with its place in the line (`queued_at`, ns)."""
    write_atomically(RuntimeDir(runtime_dir).queued_env, json.dumps(clean_env()))
    return {**launcher, "queued_at": time.time_ns()}


def _queued_environment(runtime_dir: str) -> dict[str, str] | None:
    try:
        with open(RuntimeDir(runtime_dir).queued_env, encoding="utf-8") as f:
            env = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(env, dict):
        return None
    return {str(k): str(v) for k, v in env.items()}


def queue_order(record: Record) -> tuple[int, str]:
    """Oldest first: when it was queued (ns), else when it was created."""
    ticket = record.launcher.get("queued_at")
    if not isinstance(ticket, int):
        import calendar  # here, for records older than queued_at: rm imports this module

        ticket = calendar.timegm(time.strptime(record.created_at, "%Y-%m-%dT%H:%M:%SZ")) * 10**9
    return ticket, record.id


def stalled(queued: list[Record], running: int, limit: int | None) -> str | None:
    """Why the oldest of ``queued`` should be running, if it should."""
    if not queued or (limit is not None and running >= limit):
        return None
    free = "no limit" if limit is None else f"{limit - running} of {limit} slots free"
    return (f"queued, but nothing is starting it ({running} running, {free}); "
            "run: git worker fsck --repair")


def max_concurrent(repo: Repo) -> int | None:
    return Config.load(repo.common_dir).max_concurrent


def start_queued(repo: Repo) -> list[str]:
    """Start queued workers, oldest first, while worker.maxConcurrent allows."""
    if not any(isinstance(e, store.Entry) and e.record.state == State.QUEUED
               for e in store.all_entries(repo)):
        return []
    limit = max_concurrent(repo)
    with locks.queue(repo):
        return start_queued_locked(repo, limit)


def start_queued_locked(repo: Repo, limit: int | None) -> list[str]:
    """start_queued, for a caller that holds locks.queue already (spawn, start)."""
    queued = [e.record for e in store.all_entries(repo)
              if isinstance(e, store.Entry) and e.record.state == State.QUEUED]
    started: list[str] = []
    for record in sorted(queued, key=queue_order):
        current = store.read(repo, record.id)
        if current is None or current.record.state != State.QUEUED:
            continue
        if over_limit(repo, limit) is not None:
            break  # strictly oldest first: no younger one jumps a line that cannot move
        # The repository's settings, never the worker's worktree's (its agent writes that).
        config = Config.load(repo.common_dir)
        try:
            launch_recorded(repo, config, current.record)
        except WorkerError as e:
            store.set_state(repo, record.id, State.FAILED, f"queue: cannot start: {e}"[:200])
            continue
        started.append(record.id)
    return started


def launch_recorded(repo: Repo, config: Config, record: Record) -> None:
    """Start the agent of a worker spawned earlier (queued): same agent, model, launcher,
    and the environment its own spawn had."""
    from git_worker import agents, launchers, leases

    runtime = RuntimeDir.of(repo, record.id).path
    ctx = agents.Context(record.id, runtime, repo.common_dir, record.worktree,
                         record.branch, env=leases.environment(config, record))
    inv = agents.invocation(config, record.agent or config.agent, model=record.model, ctx=ctx)
    kind = record.launcher.get("kind") or launchers.default_kind(config)
    launcher = launchers.launch(kind, inv, worker_id=record.id, worktree=record.worktree,
                                runtime_dir=runtime, common_dir=repo.common_dir,
                                socket=record.launcher.get("socket"),
                                environment=_queued_environment(runtime))
    with suppress(FileNotFoundError):
        os.remove(RuntimeDir(runtime).queued_env)  # its secrets are needed no more

    def change(r: Record) -> None:
        r.launcher = dict(launcher)
        if "launch" not in r.spawn_steps:
            r.spawn_steps = [*r.spawn_steps, "launch"]
        if r.state == State.QUEUED:
            r.state = State.RUNNING

    store.update(repo, record.id, change, "queue: started")
