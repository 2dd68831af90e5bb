"""git worker logs: the agent's output, from the log file the launcher writes.

The file outlives the tmux session and the process, so this works after both are gone.
"""

from __future__ import annotations

import os
import sys
import time

from git_worker import output, probe
from git_worker.errors import UsageError, WorkerError
from git_worker.registry import store
from git_worker.registry.record import RUNNING, State
from git_worker.registry.runtime import RuntimeDir
from git_worker.repo import Repo

_POLL = 0.2  # seconds between looks at a followed log


def run(repo: Repo, worker_id: str, *, follow: bool, lines: int | None) -> int:
    if lines is not None and lines < 0:
        raise UsageError("-n wants a number of lines, 0 or more")
    record = store.get(repo, worker_id).record
    path = RuntimeDir.of(repo, worker_id).agent_log
    if not os.path.exists(path):
        if record.state in (State.READY, State.QUEUED) or (record.state == State.STOPPED
                                                    and not record.launcher.get("pid")):
            raise WorkerError(f"'{worker_id}' has no agent output: no agent has started "
                              f"(state {record.state})")
        if not follow:
            raise WorkerError(f"'{worker_id}' has no log at {path}",
                              hint="its runtime files are gone (git worker fsck says more)")
    out = sys.stdout.buffer
    # The agent's output, as it wrote it, to a pipe; on a terminal, colours are kept and
    # every other control character is shown (an agent must not retitle or clear it).
    shown = output.visible_bytes if sys.stdout.isatty() else bytes
    position = 0
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
        position = len(data)
        out.write(shown(_last_lines(data, lines) if lines is not None else data))
        out.flush()
    if not follow:
        return 0
    while True:
        finished = _finished(repo, worker_id)
        try:
            with open(path, "rb") as f:
                f.seek(position)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            position += len(chunk)
            out.write(shown(chunk))
            out.flush()
        if finished:  # read once more after the exit was seen: nothing is lost
            return 0
        time.sleep(_POLL)


def _finished(repo: Repo, worker_id: str) -> bool:
    if probe.exit_status(repo, worker_id) is not None:
        return True
    entry = store.read(repo, worker_id)
    if entry is None:
        return True
    seen = probe.observe(probe.Reality.read(repo), entry.record)
    return seen.state not in (*RUNNING, State.QUEUED, State.SPAWNING)


def _last_lines(data: bytes, n: int) -> bytes:
    if n == 0:
        return b""
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts = parts[:-1]
        return b"\n".join(parts[-n:]) + b"\n"
    return b"\n".join(parts[-n:])
