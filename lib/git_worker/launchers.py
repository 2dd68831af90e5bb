"""Launchers: how an agent runs in the background.

`detached`: its own session and process group (setsid), output to the worker's log file,
exit code recorded by git_worker.runner.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from typing import Any

from git_worker import processes
from git_worker.agents import Invocation
from git_worker.errors import WorkerError
from git_worker.git import clean_env

_START_TIMEOUT = 10.0
_LIB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def runner_argv(runtime_dir: str, common_dir: str, worker_id: str, ready_fd: int,
                argv: list[str]) -> list[str]:
    # -c with our lib dir on sys.path, rather than PYTHONPATH, which the agent would inherit.
    bootstrap = (f"import sys; sys.path.insert(0, {_LIB_DIR!r}); "
                 "from git_worker.runner import main; raise SystemExit(main(sys.argv[1:]))")
    return [sys.executable, "-c", bootstrap, runtime_dir, common_dir, worker_id,
            str(ready_fd), "--", *argv]


def launch_detached(inv: Invocation, *, worker_id: str, worktree: str, runtime_dir: str,
                    common_dir: str) -> dict[str, Any]:
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(
            runner_argv(runtime_dir, common_dir, worker_id, write_end, inv.argv),
            cwd=worktree,
            env=clean_env(inv.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(runtime_dir, "runner.log"), "ab"),  # noqa: SIM115
            pass_fds=(write_end,),
            start_new_session=True,
        )
    finally:
        os.close(write_end)
    try:
        answer = _read_ready(read_end)
    finally:
        os.close(read_end)
    if not answer.startswith("started "):
        proc.wait()
        why = answer.removeprefix("error ").strip() or "the runner exited before starting it"
        raise WorkerError(
            f"cannot start agent '{inv.name}': {why}",
            hint=f"check the command: git config worker.agent.{inv.name}.command",
        )
    info = processes.identity(pid=proc.pid)
    return {"kind": "detached", "pid": proc.pid, "start": info["start"],
            "agent_pid": int(answer.split()[1])}


def _read_ready(fd: int) -> str:
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], _START_TIMEOUT)
        if not ready:
            return "error the agent did not start within 10 s"
        chunk = os.read(fd, 512)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")
