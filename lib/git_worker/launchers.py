"""Launchers: where an agent runs in the background. Both start git_worker.runner, which
runs the agent with the prompt on stdin, writes its output to the worker's log and records
its exit code.

`tmux` (the default when tmux is installed): one session per worker, named `worker-<id>`,
on the caller's tmux server (the one $TMUX names when spawned from inside tmux, else the
default socket under $TMUX_TMPDIR). `git worker attach ID` opens it; the log file gets the
same output. The spawner's environment reaches the agent through a FIFO in the worker's
runtime dir — not through tmux, whose server would hand the session its own (possibly
stale) environment, and not on a command line, where secrets would show in `ps`.

`detached`: its own session and process group (setsid), output to the log only; the
agent's argv and environment reach its runner through a pipe it inherits.

Either runner can be started before its agent is known (Prepared): spawn starts it right
after its claim, so that its start-up overlaps the checkout.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from contextlib import suppress

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
        return "tmux" if _installed("tmux") else "detached"
    if setting not in KINDS:
        raise WorkerError(f"bad value '{setting}' for worker.launcher: expected tmux or detached",
                          hint="git config worker.launcher detached")
    if setting == "tmux" and not _installed("tmux"):
        raise WorkerError("worker.launcher is tmux, but tmux is not installed",
                          hint="install tmux (apt install tmux), or: "
                               "git config worker.launcher detached")
    return setting


def _installed(program: str) -> bool:
    """Whether ``program`` is on PATH, as shutil.which tells — without importing shutil
    (with bz2, lzma and zlib: ~2.5 ms of every launched spawn's start-up, measured)."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(directory or os.curdir, program)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return True
    return False


def launch(kind: str, inv: Invocation, *, worker_id: str, worktree: str, runtime_dir: str,
           common_dir: str, socket: str | None = None,
           environment: dict[str, str] | None = None,
           prepared: Prepared | None = None) -> dict[str, Any]:
    """Start the agent; return what the record keeps in `launcher`. The agent gets
    ``environment`` (default: ours), less what pins git to a repository, plus inv.env.
    ``prepared``: its runner, started earlier (see Prepared)."""
    runner = prepared or prepare(kind, worker_id=worker_id, worktree=worktree,
                                 runtime_dir=runtime_dir, common_dir=common_dir, socket=socket)
    try:
        return runner.start(inv, environment)
    finally:
        runner.close()  # nothing once started


class Prepared:
    """A runner started before its agent is known, waiting for it: spawn starts it right
    after its claim, so that its start-up (a second Python) overlaps the checkout.
    ``start`` hands it the agent's directory, argv and environment, and returns once the
    agent runs (what the record keeps in `launcher`); ``close`` ends a runner never
    started, which, given nothing, runs nothing — and so does a runner whose spawner is
    killed: the handover closes with the spawner's descriptors.
    """

    worktree: str

    def start(self, inv: Invocation, environment: dict[str, str] | None = None,
              ) -> dict[str, Any]:
        try:
            answer = self._hand_over(_payload(self.worktree, inv.argv,
                                              clean_env(inv.env, environment)))
            if not answer.startswith("started "):
                raise _not_started(inv, answer)
        except BaseException:
            self.close()
            raise
        self._release()
        return self._launcher(answer)

    def _hand_over(self, payload: bytes) -> str:
        """Give the runner its payload; its answer ("started …" or "error …")."""
        raise NotImplementedError

    def _launcher(self, answer: str) -> dict[str, Any]:
        """What the record keeps of a runner that answered "started …"."""
        raise NotImplementedError

    def _release(self) -> None:
        """Let go of the runner, which runs on by itself from here."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def prepare(kind: str, *, worker_id: str, worktree: str, runtime_dir: str, common_dir: str,
            socket: str | None = None) -> Prepared:
    """The runner of ``kind`` (tmux, detached), started; see Prepared."""
    if kind == "tmux":
        return Session(worker_id=worker_id, worktree=worktree, runtime_dir=runtime_dir,
                       common_dir=common_dir, socket=socket)
    return Detached(worker_id=worker_id, worktree=worktree, runtime_dir=runtime_dir,
                    common_dir=common_dir)


def runner_argv(runtime_dir: str, common_dir: str, worker_id: str, *mode: str) -> list[str]:
    # -c with our lib dir on sys.path, rather than PYTHONPATH, which the agent would inherit.
    # And without the "" that -c puts first: the current directory, which is the worktree
    # (tmux starts the runner there; it moves there before the agent starts), whose files
    # are the agent's: a json.py written there would run in the runner at its next import.
    # (Not -P, which would move the words worker_processes.proven reads.)
    bootstrap = (f"import sys; sys.path[:] = [{_LIB_DIR!r}, *(p for p in sys.path if p)]; "
                 "from git_worker.runner import main; raise SystemExit(main(sys.argv[1:]))")
    return [sys.executable, "-c", bootstrap, runtime_dir, common_dir, worker_id, *mode]


def runner_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a runner: a relative PYTHONPATH entry (``.``, ``src``) made absolute
    against our own directory, as our own sys.path has it. Python would make it absolute
    against the directory the runner starts in, the worktree under tmux, and import from
    there as it starts (encodings, site...), before the bootstrap can drop anything."""
    value = env.get("PYTHONPATH")
    if not value or all(os.path.isabs(p) for p in value.split(os.pathsep) if p):
        return env
    try:
        here = os.getcwd()
    except OSError:  # our directory is gone: what was relative to it names nothing
        here = ""
    kept = [p if os.path.isabs(p) else os.path.normpath(os.path.join(here, p))
            for p in value.split(os.pathsep) if os.path.isabs(p) or (p and here)]
    return {**env, "PYTHONPATH": os.pathsep.join(kept)}


# --- detached ----------------------------------------------------------------------------


class Detached(Prepared):
    """A runner in its own session (setsid), the handover and its answer through pipes it
    inherits."""

    def __init__(self, *, worker_id: str, worktree: str, runtime_dir: str,
                 common_dir: str) -> None:
        self.worktree = worktree
        handover, self._handover = os.pipe()
        self._answer, answer = os.pipe()
        self._open = True
        try:
            with open(RuntimeDir(runtime_dir).runner_log, "ab", opener=private) as runner_log:
                self._proc = subprocess.Popen(
                    runner_argv(runtime_dir, common_dir, worker_id, "--handover-fd",
                                str(handover), "--ready-fd", str(answer)),
                    cwd=runtime_dir,  # the worktree may not exist yet
                    env=runner_env(clean_env()),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=runner_log,  # the child keeps its own copy of the descriptor
                    pass_fds=(handover, answer),
                    start_new_session=True,
                )
        except BaseException:
            self._release()
            raise
        finally:
            os.close(handover)
            os.close(answer)

    def _hand_over(self, payload: bytes) -> str:
        assert self._open, "a runner starts one agent"
        try:
            _write_all(self._handover, payload)
        except BrokenPipeError:
            pass  # the runner is gone: its answer (none) says so
        return _read_ready(self._answer)

    def _launcher(self, answer: str) -> dict[str, Any]:
        pid = self._proc.pid
        return {"kind": "detached", "pid": pid, "start": processes.start_time(pid),
                "agent_pid": int(answer.split()[1])}

    def close(self) -> None:
        """End the runner — and its agent, if it started one meanwhile (^C while its answer
        was awaited): they are the process group it leads."""
        if not self._open:
            return
        self._release()
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()

    def _release(self) -> None:
        if self._open:
            os.close(self._handover)
            os.close(self._answer)
            self._open = False


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


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
    try:
        return subprocess.run(tmux_argv(socket, *args), env=_tmux_env(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise _no_tmux() from None


def _tmux_env() -> dict[str, str]:
    # TMUX removed: tmux refuses some commands "nested" otherwise; the socket is explicit.
    # (The runner's PYTHONPATH is set on its own command line: see Session.)
    return {k: v for k, v in os.environ.items() if k != "TMUX"}


def _no_tmux() -> WorkerError:
    return WorkerError("tmux is not installed",
                       hint="install tmux, or: git config worker.launcher detached")


def session_names(worker_id: str, repo_name: str) -> list[str]:
    """Candidates, most wanted first. tmux turns '.' and ':' in names into '_'."""
    def clean(text: str) -> str:
        return "".join("_" if c in ".:" else c for c in text)

    first = clean(f"{SESSION_PREFIX}{worker_id}")
    second = clean(f"{SESSION_PREFIX}{repo_name}-{worker_id}")
    return [first, second, *(f"{second}-{n}" for n in range(2, 10))]


class Session(Prepared):
    """A worker's tmux session, its runner in it (tmux is not waited for here: it starts
    while the caller goes on).

    The handover is a FIFO in the runtime dir, opened here for reading and writing: the
    open does not wait for the runner, what is written stays in the pipe until the runner
    reads it, and when this process ends without a word (killed), the runner reads the end
    of the file and exits, taking its session with it. The runner's answer comes back
    through a second FIFO (`started`), also opened here for reading and writing, so that
    it is read the moment it is written (no polling) and never reads as the end of file.
    """

    def __init__(self, *, worker_id: str, worktree: str, runtime_dir: str, common_dir: str,
                 socket: str | None) -> None:
        self.socket = socket or caller_socket()
        self.worktree = worktree
        self.runtime = RuntimeDir(runtime_dir)
        repo_name = os.path.basename(os.path.dirname(os.path.abspath(common_dir)))
        self._names = session_names(worker_id, repo_name)
        self.name: str | None = None  # once tmux has made it
        for stale in (self.runtime.launch_fifo, self.runtime.started):
            if os.path.lexists(stale):
                os.remove(stale)
        os.mkfifo(self.runtime.launch_fifo, 0o600)
        self._fd: int | None = os.open(self.runtime.launch_fifo,
                                       os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self._answer: int | None = None
        try:
            os.mkfifo(self.runtime.started, 0o600)
            self._answer = os.open(self.runtime.started, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except BaseException:
            self._release()
            raise
        # Which FIFO is its own, for the runner to check before it reads: a runner that
        # outlived a killed spawn never reads the handover of the next spawn of the id.
        st = os.fstat(self._fd)
        # A session's environment is its server's, which may be the user's, started long
        # ago (with a relative PYTHONPATH, say): the runner gets the one runner_env makes
        # of ours, through env, which execs it (its command line is the runner's, as
        # worker_processes.proven reads it). The server's own is left as it is.
        pythonpath = runner_env(dict(os.environ)).get("PYTHONPATH", "")
        self._argv = ["/usr/bin/env", f"PYTHONPATH={pythonpath}",
                      *runner_argv(runtime_dir, common_dir, worker_id, "--fifo",
                                   f"{st.st_dev}:{st.st_ino}")]
        try:  # not waited for here: tmux starts while the caller goes on
            self._tmux: subprocess.Popen[str] | None = subprocess.Popen(
                tmux_argv(self.socket, *self._new_session(self._names[0])), env=_tmux_env(),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True)
        except BaseException as e:
            self._release()
            if isinstance(e, FileNotFoundError):
                raise _no_tmux() from None
            raise

    def _new_session(self, name: str) -> list[str]:
        # Several words after "--": tmux execs them directly, no shell in between. The
        # worktree may not exist yet: the runner moves into it before starting the agent.
        return ["new-session", "-d", "-s", name, "-c", self.worktree, "-x", "200", "-y", "50",
                "--", *self._argv]

    def _made(self) -> str:
        """The session's name, once tmux has made it (under the next name if one is
        taken: tmux is then asked again, and waited for)."""
        if self.name is not None:
            return self.name
        assert self._tmux is not None
        _, err = self._tmux.communicate()
        code, self._tmux = self._tmux.returncode, None
        name: str | None = self._names[0]
        others = iter(self._names[1:])
        while code != 0 and "duplicate session" in err and name is not None:
            name = next(others, None)
            if name is not None:
                proc = tmux(self.socket, *self._new_session(name))
                code, err = proc.returncode, proc.stderr
        if code != 0 or name is None:
            raise WorkerError("tmux could not start a session for the agent: "
                              f"{err.strip() or 'no reason given'}",
                              hint="check `tmux ls` works, or: "
                                   "git config worker.launcher detached")
        self.name = name
        return name

    def _hand_over(self, payload: bytes) -> str:
        assert self._fd is not None, "a session starts one agent"
        session = self._made()
        socket = self.socket

        def alive() -> bool | None:
            return session_alive(socket, session)

        _send_payload(self._fd, payload, alive)
        assert self._answer is not None
        return _wait_started(self._answer, alive)

    def _launcher(self, answer: str) -> dict[str, Any]:
        # "started <agent pid> <runner pid>": read from the runner itself, not asked of
        # tmux, because an agent that exits at once takes its session with it.
        _, agent_pid, runner_pid = answer.split()[:3]
        assert self.name is not None  # _made() named it before the handover
        return {"kind": "tmux", "session": self.name,
                "socket": self.socket or default_socket(),
                "pid": int(runner_pid), "start": processes.start_time(int(runner_pid)),
                "agent_pid": int(agent_pid)}

    def close(self) -> None:
        if self._fd is None:
            return
        self._release()  # the runner reads the end of the FIFO: it starts nothing
        if self._tmux is not None:
            self._tmux.communicate()
            if self._tmux.returncode == 0:
                self.name = self._names[0]
            self._tmux = None
        if self.name is not None:
            tmux(self.socket, "kill-session", "-t", f"={self.name}")

    def _release(self) -> None:
        for fd in (self._fd, self._answer):
            if fd is not None:
                os.close(fd)
        self._fd = self._answer = None
        for fifo in (self.runtime.launch_fifo, self.runtime.started):
            if os.path.lexists(fifo):
                os.remove(fifo)


def _payload(cwd: str, argv: list[str], env: dict[str, str]) -> bytes:
    """The runner's handover: its length in ASCII digits and a newline, then NUL-separated
    fields (no JSON: the runner would import it): the directory, how many argv words, the
    words, then NAME=VALUE pairs. Neither argv nor an environment can hold a NUL."""
    fields = [cwd, str(len(argv)), *argv, *(f"{k}={v}" for k, v in env.items())]
    body = "\0".join(fields).encode("utf-8", "surrogateescape")
    return str(len(body)).encode() + b"\n" + body


def default_socket() -> str:
    """Where tmux puts its default server's socket: $TMUX_TMPDIR (or /tmp)/tmux-UID/default."""
    base = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return os.path.join(base, f"tmux-{os.getuid()}", "default")


def _send_payload(fd: int, data: bytes, alive: Any) -> None:
    """Hand the runner its argv and environment through the FIFO (no disk, no `ps`). A
    pipe holds 64 KiB; a bigger payload waits for the runner to read."""
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


def _wait_started(fd: int, alive: Any) -> str:
    """The runner's answer, read from the `started` FIFO as soon as it is written; whether
    the session still runs is asked of tmux (a process) only every _ALIVE_EVERY seconds
    without one."""
    deadline = time.monotonic() + _START_TIMEOUT
    data = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], _ALIVE_EVERY)
        if ready:
            with suppress(BlockingIOError):
                data += os.read(fd, 512)
            if data.endswith(b"\n"):
                return data.decode(errors="replace")
        elif not alive():
            return "error the tmux session ended before the agent started"
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
