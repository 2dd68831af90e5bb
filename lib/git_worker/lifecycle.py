"""State transitions after spawn: the agent's exit, what the agent itself reports through
its hooks (waiting, done), a user's stop, and starting queued workers when slots free up
(worker.maxConcurrent). Each transition is one compare-and-swap registry update whose
commit message is the event; worker.notify hears about the ones a human cares about.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from git_worker import processes, registry
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.git import clean_env
from git_worker.registry import Record
from git_worker.repo import Repo

RUNNING = ("running", "waiting")  # an agent process exists (or should)
_STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL


def exit_state(code: int) -> str:
    return "exited" if code == 0 else "failed"


def record_exit(repo: Repo, worker_id: str, code: int) -> None:
    def change(r: Record) -> None:
        r.exit_code = code
        # A spawning record stays so: its spawner sets the final state (or, if the
        # spawner died, recovery decides what to keep).
        if r.state in ("running", "waiting"):
            r.state = exit_state(code)

    entry = registry.update(repo, worker_id, change, f"exited {code}")
    _clear_waiting(repo, worker_id)
    if entry.record.state in ("exited", "failed"):
        notify(repo, entry.record, entry.record.state, f"exit code {code}")
    # worker.review true: the gate runs by itself once the agent has finished well.
    from git_worker import review

    review.after_exit(repo, worker_id, code)


def record_agent_event(repo: Repo, worker_id: str, event: str, message: str = "") -> Record:
    """What the agent reported through its hooks: started, waiting, done, running."""
    marker = os.path.join(registry.runtime_dir(repo, worker_id), "waiting")
    text = f"agent: {event}" + (f": {message}" if message else "")

    def change(r: Record) -> None:
        # "spawning" too: a quick agent may report before spawn has recorded "running";
        # spawn then keeps the state it finds.
        if event in ("waiting", "done") and r.state in (*RUNNING, "spawning"):
            r.state = "waiting"  # done = its turn is over: it waits for a human (or exits)
        elif event == "running" and r.state == "waiting":
            r.state = "running"

    entry = registry.update(repo, worker_id, change, text[:200])
    if entry.record.state == "waiting":
        with open(marker, "w", encoding="utf-8", opener=registry.private) as f:
            f.write(message + "\n")
    else:
        _clear_waiting(repo, worker_id)
    if event in ("waiting", "done"):
        notify(repo, entry.record, event, message)
    return entry.record


def _clear_waiting(repo: Repo, worker_id: str) -> None:
    with suppress(FileNotFoundError):
        os.remove(os.path.join(registry.runtime_dir(repo, worker_id), "waiting"))


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
    runtime = registry.runtime_dir(repo, record.id)
    try:
        with open(os.path.join(runtime, "notify.log"), "ab", opener=registry.private) as log:
            subprocess.Popen(argv, cwd=where, env=env, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        try:
            with open(os.path.join(runtime, "notify.log"), "a", encoding="utf-8",
                      opener=registry.private) as log:
                log.write(f"worker.notify {argv[0]}: {e.strerror or e}\n")
        except OSError:
            pass


# --- stop --------------------------------------------------------------------------------


def stop(repo: Repo, worker_id: str) -> str:
    """End the worker's agent, keep worktree and branch; returns what was done."""
    from git_worker import probe

    record = registry.get(repo, worker_id).record
    if record.state == "queued":
        registry.set_state(repo, worker_id, "stopped", "stopped (was queued)")
        return "stopped (it was queued; no agent had started)"
    code = probe.exit_status(repo, worker_id)
    if record.state not in RUNNING or code is not None:
        shown = probe.observe(probe.Reality.read(repo), record).state
        return f"not running ({shown}); nothing to stop"

    def mark(r: Record) -> None:
        if r.state in RUNNING:
            r.state = "stopped"

    registry.update(repo, worker_id, mark, "stopped by user")
    _clear_waiting(repo, worker_id)
    launcher = record.launcher
    pid = launcher.get("pid")
    if pid and processes.alive(launcher | {"host": record.host}):
        # The runner ignores SIGTERM: the agent ends, the runner records its exit code.
        _signal_group(int(pid), signal.SIGTERM)
        if _wait_for_exit(repo, worker_id, _STOP_GRACE) is None:
            _signal_group(int(pid), signal.SIGKILL)
            if _wait_for_exit(repo, worker_id, 1.0) is None:
                registry.write_atomically(
                    os.path.join(registry.runtime_dir(repo, worker_id), "exit"),
                    f"{128 + signal.SIGKILL}\n")
                record_exit(repo, worker_id, 128 + signal.SIGKILL)
    if launcher.get("kind") == "tmux" and launcher.get("session"):
        from git_worker import launchers

        if launchers.session_alive(launcher.get("socket"), launcher["session"]):
            launchers.tmux(launcher.get("socket"), "kill-session", "-t", f"={launcher['session']}")
    start_queued(repo)
    code = probe.exit_status(repo, worker_id)
    return "stopped" + (f" (agent exit code {code})" if code is not None else "")


def _signal_group(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _wait_for_exit(repo: Repo, worker_id: str, seconds: float) -> int | None:
    from git_worker import probe

    deadline = time.monotonic() + seconds
    while True:
        code = probe.exit_status(repo, worker_id)
        if code is not None or time.monotonic() > deadline:
            return code
        time.sleep(0.05)


# --- worker.maxConcurrent and the queue --------------------------------------------------


@contextmanager
def queue_lock(repo: Repo) -> Iterator[None]:
    """One process at a time counts running workers and starts new ones.

    flock(2) on <git-common-dir>/workers (a directory every spawn makes anyway): no lock
    file to leave behind. (bd calls lock the git directory itself: a different object, so
    a claim made while this lock is held cannot deadlock on it.)
    """
    directory = registry.ensure_runtime_root(repo)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def running_ids(repo: Repo, exclude: str | None = None) -> list[str]:
    """Workers whose agent runs now (recorded running/waiting, no exit, process not gone)."""
    from git_worker import probe

    found = []
    for entry in registry.all_entries(repo):
        if not isinstance(entry, registry.Entry) or entry.record.id == exclude:
            continue
        r = entry.record
        if r.state not in RUNNING or probe.exit_status(repo, r.id) is not None:
            continue
        if processes.alive(r.launcher | {"host": r.host}) is False:
            continue  # vanished: it holds no slot
        found.append(r.id)
    return found


def over_limit(repo: Repo, limit: int | None, exclude: str | None = None) -> list[str] | None:
    """The running ids when ``limit`` is reached, else None."""
    if limit is None:
        return None
    running = running_ids(repo, exclude)
    return running if len(running) >= limit else None


def start_queued(repo: Repo) -> list[str]:
    """Start queued workers, oldest first, while worker.maxConcurrent allows."""
    queued = [e for e in registry.all_entries(repo)
              if isinstance(e, registry.Entry) and e.record.state == "queued"]
    if not queued:
        return []
    config = Config.load(repo.common_dir)
    started = []
    with queue_lock(repo):
        for entry in sorted(queued, key=lambda e: (e.record.created_at, e.record.id)):
            current = registry.read(repo, entry.record.id)
            if current is None or current.record.state != "queued":
                continue
            if over_limit(repo, config.max_concurrent) is not None:
                break
            try:
                launch_recorded(repo, config, current.record)
            except WorkerError as e:
                def failed(r: Record, why: str = str(e)) -> None:
                    r.state = "failed"

                registry.update(repo, entry.record.id, failed, f"queue: cannot start: {e}"[:200])
                continue
            started.append(entry.record.id)
    return started


def launch_recorded(repo: Repo, config: Config, record: Record) -> None:
    """Start the agent of a worker spawned earlier (queued): same agent, model, launcher."""
    from git_worker import agents, launchers, leases

    runtime = registry.runtime_dir(repo, record.id)
    ctx = agents.Context(record.id, runtime, repo.common_dir, record.worktree,
                         record.branch, env=leases.environment(config, record))
    inv = agents.invocation(config, record.agent or "claude", model=record.model, ctx=ctx)
    kind = record.launcher.get("kind") or launchers.default_kind(config)
    launcher = launchers.launch(kind, inv, worker_id=record.id, worktree=record.worktree,
                                runtime_dir=runtime, common_dir=repo.common_dir,
                                socket=record.launcher.get("socket"))

    def change(r: Record) -> None:
        r.launcher = dict(launcher)
        if "launch" not in r.spawn_steps:
            r.spawn_steps = [*r.spawn_steps, "launch"]
        if r.state == "queued":
            r.state = "running"

    registry.update(repo, record.id, change, "queue: started")
