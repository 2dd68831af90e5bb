"""Launchers: where an agent runs in the background. Both start git_worker.runner, which
runs the agent with the prompt on stdin, writes its output to the worker's log and records
its exit code.

`tmux` (the default when tmux is installed): one session per worker, named `worker-<id>`,
on the caller's tmux server (the one $TMUX names when spawned from inside tmux, else the
default socket under $TMUX_TMPDIR). `git worker attach ID` opens it; the log file gets the
same output. The spawner's environment reaches the agent through a FIFO in the worker's
runtime dir — not through tmux, whose server would hand the session its own (possibly
stale) environment, and not on a command line, where secrets would show in `ps`.

`detached`: its own session and process group (setsid), output to the log only.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time

from git_worker import processes
from git_worker.agents import Invocation
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.git import clean_env
from git_worker.registry.runtime import RuntimeDir, private

# typing only for annotations: importing it costs every spawn ~3 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KINDS = ("tmux", "detached")
_START_TIMEOUT = 10.0
_ALIVE_EVERY = 0.2  # seconds between asking tmux whether a session being started still runs
_LIB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SESSION_PREFIX = "worker-"


def default_kind(config: Config) -> str:
    setting = config.string("worker.launcher")
    if setting is None:
        return "tmux" if shutil.which("tmux") else "detached"
    if setting not in KINDS:
        raise WorkerError(f"bad value '{setting}' for worker.launcher: expected tmux or detached",
                          hint="git config worker.launcher detached")
    if setting == "tmux" and not shutil.which("tmux"):
        raise WorkerError("worker.launcher is tmux, but tmux is not installed",
                          hint="install tmux (apt install tmux), or: "
                               "git config worker.launcher detached")
    return setting


def launch(kind: str, inv: Invocation, *, worker_id: str, worktree: str, runtime_dir: str,
           common_dir: str, socket: str | None = None,
           environment: dict[str, str] | None = None) -> dict[str, Any]:
    """Start the agent; return what the record keeps in `launcher`. The agent gets
    ``environment`` (default: ours), less what pins git to a repository, plus inv.env."""
    if kind == "tmux":
        return launch_tmux(inv, worker_id=worker_id, worktree=worktree, runtime_dir=runtime_dir,
                           common_dir=common_dir, socket=socket, environment=environment)
    return launch_detached(inv, worker_id=worker_id, worktree=worktree, runtime_dir=runtime_dir,
                           common_dir=common_dir, environment=environment)


def runner_argv(runtime_dir: str, common_dir: str, worker_id: str, *mode: str) -> list[str]:
    # -c with our lib dir on sys.path, rather than PYTHONPATH, which the agent would inherit.
    bootstrap = (f"import sys; sys.path.insert(0, {_LIB_DIR!r}); "
                 "from git_worker.runner import main; raise SystemExit(main(sys.argv[1:]))")
    return [sys.executable, "-c", bootstrap, runtime_dir, common_dir, worker_id, *mode]


# --- detached ----------------------------------------------------------------------------


def launch_detached(inv: Invocation, *, worker_id: str, worktree: str, runtime_dir: str,
                    common_dir: str, environment: dict[str, str] | None = None) -> dict[str, Any]:
    read_end, write_end = os.pipe()
    try:
        with open(RuntimeDir(runtime_dir).runner_log, "ab", opener=private) as runner_log:
            proc = subprocess.Popen(
                [*runner_argv(runtime_dir, common_dir, worker_id, "--ready-fd", str(write_end)),
                 "--", *inv.argv],
                cwd=worktree,
                env=clean_env(inv.env, environment),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=runner_log,  # the child keeps its own copy of the descriptor
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
        raise _not_started(inv, answer)
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


def _not_started(inv: Invocation, answer: str) -> WorkerError:
    why = answer.removeprefix("error ").strip() or "the runner exited before starting it"
    if inv.missing_hint and "No such file" in why:
        hint = inv.missing_hint
    else:
        hint = (f"check the command: git config worker.agent.{inv.name}.command "
                "(and the runner's own log: <git-dir>/workers/<id>/runner.log)")
    return WorkerError(f"cannot start agent '{inv.name}': {why}", hint=hint)


# --- tmux --------------------------------------------------------------------------------


def caller_socket() -> str | None:
    """The socket of the tmux server we run inside ($TMUX = socket,pid,session), if any."""
    value = os.environ.get("TMUX", "")
    return value.split(",", 1)[0] or None


def tmux_argv(socket: str | None, *args: str) -> list[str]:
    return ["tmux", *(["-S", socket] if socket else []), *args]


def tmux(socket: str | None, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    # TMUX removed: tmux refuses some commands "nested" otherwise; the socket is explicit.
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    try:
        return subprocess.run(tmux_argv(socket, *args), env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise WorkerError("tmux is not installed",
                          hint="install tmux, or: git config worker.launcher detached") from None


def session_names(worker_id: str, repo_name: str) -> list[str]:
    """Candidates, most wanted first. tmux turns '.' and ':' in names into '_'."""
    def clean(text: str) -> str:
        return "".join("_" if c in ".:" else c for c in text)

    first = clean(f"{SESSION_PREFIX}{worker_id}")
    second = clean(f"{SESSION_PREFIX}{repo_name}-{worker_id}")
    return [first, second, *(f"{second}-{n}" for n in range(2, 10))]


def launch_tmux(inv: Invocation, *, worker_id: str, worktree: str, runtime_dir: str,
                common_dir: str, socket: str | None,
                environment: dict[str, str] | None = None) -> dict[str, Any]:
    socket = socket or caller_socket()
    fifo, started = RuntimeDir(runtime_dir).launch_fifo, RuntimeDir(runtime_dir).started
    for stale in (fifo, started):
        if os.path.lexists(stale):
            os.remove(stale)
    os.mkfifo(fifo, 0o600)
    # Opened for reading and writing: the open does not wait for the runner, and what is
    # written stays in the pipe until the runner reads it (one line: the runner reads up to
    # its end) — no polling for the runner to open its end.
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        repo_name = os.path.basename(os.path.dirname(os.path.abspath(common_dir)))
        session = _new_session(socket, session_names(worker_id, repo_name), worktree,
                               runner_argv(runtime_dir, common_dir, worker_id, "--fifo"))
        try:
            _send_payload(fd, {"argv": inv.argv, "env": clean_env(inv.env, environment)},
                          lambda: session_alive(socket, session))
            answer = _wait_started(started, lambda: session_alive(socket, session))
            if not answer.startswith("started "):
                raise _not_started(inv, answer)
        except BaseException:
            tmux(socket, "kill-session", "-t", f"={session}")
            raise
    finally:
        os.close(fd)
        if os.path.lexists(fifo):
            os.remove(fifo)
    # "started <agent pid> <runner pid>": read from the runner itself, not asked of tmux,
    # because an agent that exits at once takes its session with it.
    _, agent_pid, runner_pid = answer.split()[:3]
    return {"kind": "tmux", "session": session, "socket": socket or default_socket(),
            "pid": int(runner_pid), "start": processes.start_time(int(runner_pid)),
            "agent_pid": int(agent_pid)}


def default_socket() -> str:
    """Where tmux puts its default server's socket: $TMUX_TMPDIR (or /tmp)/tmux-UID/default."""
    base = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return os.path.join(base, f"tmux-{os.getuid()}", "default")


def _new_session(socket: str | None, names: list[str], worktree: str, argv: list[str]) -> str:
    last = ""
    for name in names:
        # Several words after "--": tmux execs them directly, no shell in between.
        proc = tmux(socket, "new-session", "-d", "-s", name, "-c", worktree,
                    "-x", "200", "-y", "50", "--", *argv)
        if proc.returncode == 0:
            return name
        last = proc.stderr.strip()
        if "duplicate session" not in last:
            break
    raise WorkerError(f"tmux could not start a session for the agent: {last or 'no reason given'}",
                      hint="check `tmux ls` works, or: git config worker.launcher detached")


def _send_payload(fd: int, payload: dict[str, Any], alive: Any) -> None:
    """Hand the runner its argv and environment through the FIFO (no disk, no `ps`): one
    line of JSON. A pipe holds 64 KiB; a bigger payload waits for the runner to read."""
    data = json.dumps(payload).encode() + b"\n"
    deadline = time.monotonic() + _START_TIMEOUT
    while data:
        try:
            data = data[os.write(fd, data):]
            continue
        except BlockingIOError:
            pass
        if time.monotonic() > deadline or not alive():
            raise WorkerError("the tmux session ended before the agent started",
                              hint="see <git-dir>/workers/<id>/runner.log, or try "
                                   "git config worker.launcher detached")
        select.select([], [fd], [], _ALIVE_EVERY)


def _wait_started(path: str, alive: Any) -> str:
    """The runner's answer, looked for every 2 ms (a start takes tens of ms); whether its
    session still runs is asked of tmux (a process) only every _ALIVE_EVERY seconds."""
    deadline = time.monotonic() + _START_TIMEOUT
    next_check = time.monotonic() + _ALIVE_EVERY
    while time.monotonic() < deadline:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if text.endswith("\n"):
                return text
        except FileNotFoundError:
            pass
        if time.monotonic() > next_check:
            if not alive():
                return "error the tmux session ended before the agent started"
            next_check = time.monotonic() + _ALIVE_EVERY
        time.sleep(0.002)
    return "error the agent did not start within 10 s"


def session_alive(socket: str | None, session: str) -> bool | None:
    """True/False when tmux can tell; None when tmux itself cannot be asked."""
    try:
        proc = tmux(socket, "has-session", "-t", f"={session}", timeout=5)
    except (WorkerError, subprocess.TimeoutExpired):
        return None
    if proc.returncode == 0:
        return True
    err = proc.stderr
    if "can't find session" in err or "no server running" in err or "error connecting" in err:
        return False
    return None
