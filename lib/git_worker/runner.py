"""The process that babysits one agent, started by a launcher (detached or in tmux).

It runs the agent with the prompt on stdin and its output in the worker's log (and, in
tmux, on the pane too), then records the exit code — in `<runtime-dir>/exit` at once, and
in the registry (state exited/failed) — tells worker.notify, and starts queued workers.

Usage (internal):
  runner RUNTIME_DIR COMMON_DIR WORKER_ID --handover-fd FD --ready-fd FD   (detached)
  runner RUNTIME_DIR COMMON_DIR WORKER_ID --fifo DEV:INO                   (tmux)
The runner starts before its agent is known (spawn starts it before the checkout) and
waits for the handover: the directory, argv and environment of the agent, from the
inherited pipe --handover-fd, or from <runtime-dir>/launch.fifo (the FIFO with that device
and inode number: launchers.Session's). It answers "started <agent pid> <runner pid>"
once the agent's exec succeeded, or "error <why>": on --ready-fd, or into the FIFO
<runtime-dir>/started. A runner whose handover closes without a word (its spawner failed
or was killed) starts nothing and exits.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from contextlib import suppress

from git_worker import worker_processes
from git_worker.registry.runtime import RuntimeDir, private, write_atomically

# typing only for annotations: the runner's start-up is on a launch's way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

_LIB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(args: list[str]) -> int:
    runtime_dir, common_dir, worker_id, mode = args[0], args[1], args[2], args[3]
    # stop signals the whole process group: the agent ends, we stay to record its exit.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Ctrl-C in an attached tmux pane reaches the whole group: the agent's to handle.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A hangup means the tmux session was closed: end the agent (once), then record.
    signal.signal(signal.SIGHUP, _forward_hangup)
    tee = mode == "--fifo"  # tmux: the agent's output goes to the pane too
    if tee:
        # Our own complaints go to runner.log, as the detached launcher's do: the pane
        # (and whatever was printed on it) is gone when the session ends.
        try:
            sys.stderr = open(RuntimeDir(runtime_dir).runner_log, "a",  # noqa: SIM115
                              buffering=1, opener=private)
        except OSError as e:  # then on the pane, which is all there is
            print(f"git-worker runner: no runner.log: {_describe(e)}", file=sys.stderr)
        handover_fd: int | None = _open_fifo(RuntimeDir(runtime_dir).launch_fifo, args[4])

        def answer(text: str) -> None:
            _answer_fifo(RuntimeDir(runtime_dir).started, text + "\n")
    else:
        handover_fd, ready_fd = int(args[4]), int(args[6])
        for fd in (handover_fd, ready_fd):
            os.set_inheritable(fd, False)  # the agent's business is neither

        def answer(text: str) -> None:
            os.write(ready_fd, (text + "\n").encode())
            os.close(ready_fd)

    try:
        handover = None if handover_fd is None else _receive(handover_fd)
    except (OSError, ValueError) as e:
        print(f"git-worker runner: no launch data: {e}", file=sys.stderr)
        handover = None
    if handover is None:  # the spawn failed or was killed: start nothing
        if tee:
            _end_session()  # which it runs in
        return 1
    cwd, argv, env = handover
    env.update(GIT_WORKER_ID=worker_id, GIT_WORKER_RUNTIME_DIR=runtime_dir,
               GIT_WORKER_COMMON_DIR=common_dir, GIT_WORKER_LIB=_LIB_DIR,
               GIT_WORKER_PYTHON=sys.executable, PWD=cwd)
    os.environ.clear()
    os.environ.update(env)  # what queued workers started from here will inherit

    try:
        os.chdir(cwd)  # started before the worktree existed
        prompt, log = _open_files(runtime_dir)
    except OSError as e:  # e.g. a runtime dir the user cannot write: say so, no traceback
        answer(f"error {_describe(e)}")
        return 1
    with prompt, log:
        pipe = os.pipe() if tee else None  # the agent's output, for the pane and the log
        try:
            agent = _spawn_agent(argv, env, prompt.fileno(),
                                 pipe[1] if pipe else log.fileno())
        except OSError as e:
            answer(f"error {e.strerror or e}: {argv[0] if argv else '(empty command)'}")
            return 127
        finally:
            if pipe:
                os.close(pipe[1])
        global _agent_started
        _agent_started = True
        # Recorded before anyone hears of the start: the agent is known by itself from
        # here on, even if this runner is killed (list, stop and rm read it).
        worker_processes.record_agent(runtime_dir, agent, os.getpid())
        write_atomically(RuntimeDir(runtime_dir).agent_pid, f"{agent}\n")
        answer(f"started {agent} {os.getpid()}")
        if pipe:
            # In a thread: a daemon the agent left behind may hold the pipe open long after
            # the agent itself exited, and its exit must be recorded when it happens.
            # Imported only after the answer: the start-up runs alongside spawn's checkout,
            # and every import there takes CPU from it.
            import threading

            copier = threading.Thread(target=_tee, args=(pipe[0], log), daemon=True)
            copier.start()
        code = os.waitstatus_to_exitcode(os.waitpid(agent, 0)[1])
        if pipe:
            copier.join(timeout=2.0)
    if code < 0:
        code = 128 - code  # killed by signal N: report 128+N like a shell
    _write(RuntimeDir(runtime_dir).exit, f"{code}\n")
    _finish(common_dir, worker_id, code)
    if tee:
        _say(f"\n[git-worker] agent exited with code {code}; "
             f"output kept: git worker logs {worker_id}\n")
    return 0


def _spawn_agent(argv: list[str], env: dict[str, str], stdin: int, output: int) -> int:
    """Start the agent (its pid), its stdin and output on the descriptors given, the
    signals this runner ignores back to their defaults; OSError if it cannot be run.

    posix_spawn rather than the subprocess module, which would cost the runner's start-up
    more than all its other imports (subprocess, locale, selectors), ~10 ms of CPU measured
    — CPU the checkout it overlaps with needs."""
    if not argv:
        raise OSError("no command")
    return os.posix_spawnp(
        argv[0], argv, env,
        file_actions=[(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, output, 1),
                      (os.POSIX_SPAWN_DUP2, output, 2)],
        # SIGPIPE and SIGXFSZ as subprocess restores them (Python ignores them itself).
        setsigdef=(signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE,
                   signal.SIGXFSZ))


def _open_files(runtime_dir: str) -> tuple[IO[bytes], IO[bytes]]:
    """The prompt (the agent's stdin) and the log (its output)."""
    prompt = open(RuntimeDir(runtime_dir).prompt, "rb")  # noqa: SIM115
    try:
        log = open(RuntimeDir(runtime_dir).agent_log, "ab",  # noqa: SIM115
                   opener=private)
    except BaseException:
        prompt.close()
        raise
    return prompt, log


def _write(path: str, text: str) -> None:
    """A runtime file the runner keeps; one it cannot write is reported, not a traceback
    (the registry may still take the exit: _finish tries it next)."""
    try:
        write_atomically(path, text)
    except OSError as e:
        print(f"git-worker runner: could not write {os.path.basename(path)}: {_describe(e)}",
              file=sys.stderr)


def _answer_fifo(path: str, text: str) -> None:
    """The answer to a tmux launch, into the `started` FIFO the spawner reads (one write,
    shorter than PIPE_BUF: whole or nothing). A spawner gone (no reader: ENXIO, or the FIFO
    removed) hears nothing; its rollback ends this runner's session."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        print(f"git-worker runner: could not answer: {_describe(e)}", file=sys.stderr)
        return
    try:
        os.write(fd, text.encode())
    except OSError as e:
        print(f"git-worker runner: could not answer: {_describe(e)}", file=sys.stderr)
    finally:
        os.close(fd)


def _describe(e: OSError) -> str:
    from git_worker.errors import from_os_error

    world = from_os_error(e)
    return str(world) if world is not None else f"{e.strerror or e}: {e.filename}"


def _open_fifo(fifo: str, ident: str) -> int | None:
    """The FIFO of a tmux launch (launchers.Session), opened; None when it is gone (rolled
    back already) or is not the one this runner was started for (``ident``, DEV:INO: a
    runner that outlived its spawn never reads the handover of the next spawn of the id)."""
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    st = os.fstat(fd)
    if f"{st.st_dev}:{st.st_ino}" != ident:
        os.close(fd)
        return None
    return fd


def _receive(fd: int) -> tuple[str, list[str], dict[str, str]] | None:
    """The handover (launchers._payload), read from ``fd`` and closed: the directory, argv
    and environment; None when it closes without them (the spawner gave up or died)."""
    try:
        data = b""
        while True:
            header, newline, body = data.partition(b"\n")
            if newline and len(body) >= int(header):
                break
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:  # the spawner holds it open, with nothing to say yet
                select.select([fd], [], [])
                continue
            if not chunk:  # no writer left: the spawner is gone
                return None
            data += chunk
    finally:
        os.close(fd)
    fields = body.decode("utf-8", "surrogateescape").split("\0")
    count = int(fields[1])
    argv = fields[2:2 + count]
    env = {}
    for field in fields[2 + count:]:
        name, _, value = field.partition("=")
        env[name] = value
    return fields[0], argv, env


def _end_session() -> None:
    """End the tmux session this runner runs in (which ends it): without an agent, it has
    no reason to stay, even with remain-on-exit set."""
    pane = os.environ.get("TMUX_PANE")
    if pane:
        with suppress(OSError):
            os.execvp("tmux", ["tmux", "kill-session", "-t", pane])


def _tee(source: int, log: IO[bytes]) -> None:
    """Copy the agent's output to the log and, while it is there, the tmux pane."""
    pane: int | None = sys.stdout.fileno()
    while True:
        chunk = os.read(source, 65536)
        if not chunk:
            return
        try:
            log.write(chunk)
            log.flush()
        except (OSError, ValueError):  # closed: the agent's exit has been recorded
            return
        if pane is not None:
            try:
                os.write(pane, chunk)
            except OSError:
                pane = None  # the session was closed: keep logging


def _say(text: str) -> None:
    with suppress(OSError):
        os.write(sys.stdout.fileno(), text.encode())


_agent_started = False  # a hangup before it ends this runner: there is no agent to end


def _forward_hangup(signum: int, frame: object) -> None:
    if not _agent_started:
        raise SystemExit(1)  # the session was closed before the handover: start nothing
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # our own copy of the signal is ignored
    with suppress(OSError):
        os.killpg(os.getpgrp(), signal.SIGHUP)


def _finish(common_dir: str, worker_id: str, code: int) -> None:
    from git_worker import lifecycle
    from git_worker.repo import Repo

    repo = Repo(common_dir, common_dir, os.path.dirname(common_dir), None)
    try:
        review_failed = lifecycle.record_exit(repo, worker_id, code)
        if review_failed is not None:
            print(f"git-worker: review of {worker_id}: {review_failed}", file=sys.stderr)
    except OSError as e:
        print(f"git-worker runner: could not record exit {code}: {_describe(e)}",
              file=sys.stderr)
    except Exception as e:  # the exit file already holds the truth; list derives from it
        print(f"git-worker runner: could not record exit {code}: {e}", file=sys.stderr)
    try:
        from git_worker import team

        team.after_exit(repo, worker_id)  # with worker.remote: the work goes to the team
    except Exception as e:
        print(f"git-worker runner: could not publish {worker_id}'s branch: {e}", file=sys.stderr)
    try:
        lifecycle.start_queued(repo)
    except Exception as e:
        print(f"git-worker runner: could not start queued workers: {e}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
