"""git worker attach: open the tmux session a worker's agent runs in."""

from __future__ import annotations

import os
import sys

from git_worker import launchers, probe
from git_worker.errors import WorkerError
from git_worker.registry import store
from git_worker.repo import Repo


def run(repo: Repo, worker_id: str) -> int:
    record = store.get(repo, worker_id).record
    launcher = record.launcher
    logs_hint = f"its output: git worker logs {worker_id}"
    if launcher.get("kind") != "tmux":
        how = "runs detached (no terminal)" if launcher.get("kind") else "has no agent running"
        raise WorkerError(f"'{worker_id}' {how}; there is no session to attach to",
                          hint=logs_hint + " -f")
    session, socket = launcher.get("session"), launcher.get("socket")
    if not session or launchers.session_alive(socket, session) is not True:
        state = probe.observe(probe.Reality.read(repo), record).state
        raise WorkerError(f"the tmux session of '{worker_id}' is gone (state {state})",
                          hint=logs_hint)
    inside = launchers.caller_socket()
    if inside and socket and os.path.realpath(inside) == os.path.realpath(socket):
        argv = launchers.tmux_argv(socket, "switch-client", "-t", f"={session}")
    else:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise WorkerError(
                f"attach needs a terminal, and this is not one (standard input or output is "
                f"redirected); '{worker_id}' runs in tmux session {session}",
                hint=f"run git worker attach {worker_id} from a terminal; here, "
                     f"{logs_hint} -f")
        argv = launchers.tmux_argv(socket, "attach-session", "-t", f"={session}")
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}  # attach from inside tmux too
    os.execvpe(argv[0], argv, env)
    return 0  # not reached
