"""The process that babysits one agent: started detached by a launcher, it runs the agent
with the prompt on stdin and output in the worker's log, then records the exit code — in
`<runtime-dir>/exit` at once, and in the registry (state exited/failed).

Usage (internal): runner RUNTIME_DIR COMMON_DIR WORKER_ID READY_FD -- ARGV...
READY_FD receives "started <pid>" once the agent's exec succeeded, or "error <why>".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def main(args: list[str]) -> int:
    runtime_dir, common_dir, worker_id, ready_fd = args[0], args[1], args[2], int(args[3])
    argv = args[args.index("--") + 1 :]
    # Ask the group to stop and the agent gets SIGTERM too; we stay to record its exit.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with open(os.path.join(runtime_dir, "prompt.md"), "rb") as prompt, open(
        os.path.join(runtime_dir, "agent.log"), "ab"
    ) as log:
        try:
            agent = subprocess.Popen(
                argv, stdin=prompt, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_default_signals,
            )
        except OSError as e:
            os.write(ready_fd, f"error {e.strerror or e}: {argv[0]}\n".encode())
            return 127
        os.write(ready_fd, f"started {agent.pid}\n".encode())
        os.close(ready_fd)
        _write_atomically(os.path.join(runtime_dir, "agent.pid"), f"{agent.pid}\n")
        code = agent.wait()
    if code < 0:
        code = 128 - code  # killed by signal N: report 128+N like a shell
    _write_atomically(os.path.join(runtime_dir, "exit"), f"{code}\n")
    _record_exit(common_dir, worker_id, code)
    return 0


def _default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _record_exit(common_dir: str, worker_id: str, code: int) -> None:
    from git_worker import lifecycle
    from git_worker.repo import Repo

    repo = Repo(common_dir, common_dir, os.path.dirname(common_dir), None)
    try:
        lifecycle.record_exit(repo, worker_id, code)
    except Exception as e:  # the exit file already holds the truth; list derives from it
        print(f"git-worker runner: could not record exit {code}: {e}", file=sys.stderr)


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
