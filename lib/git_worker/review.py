"""The review gate: a command the user chooses that says whether a worker's branch may land.

The gate (worker.reviewGate, default `review-gate`; shell words, run without a shell) runs
in the worker's worktree with GIT_WORKER_ID, _BRANCH, _BASE, _BASE_OID, _COMMIT and
_WORKTREE in its environment. Exit 0 = passed, anything else = blocked; a gate still
running after worker.reviewTimeout is stopped (with its children) and the review is an
error. Its output goes to
<git-common-dir>/workers/<id>/review.log; the result goes into the registry as
`review` {status, at, commit, exit_code}, where `commit` is the branch tip that was
reviewed (merge treats a pass for an older tip as no pass when review is required).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from typing import BinaryIO, NoReturn

from git_worker import leases, scratch, team, worktrees
from git_worker.config import Config, default
from git_worker.errors import WorkerError
from git_worker.git import clean_env
from git_worker.registry import store
from git_worker.registry.record import Record, State, now
from git_worker.registry.runtime import RuntimeDir, make_runtime_dir, private
from git_worker.repo import Repo

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

PASSED, BLOCKED, ERROR = "passed", "blocked", "error"

# States a worker can be in when its review may move it to `reviewed` (and back).
_SETTLED = (State.READY, State.EXITED, State.FAILED, State.REVIEWED)


@dataclass
class Outcome:
    status: str  # passed, blocked, error
    exit_code: int | None
    log: str
    commit: str | None


def gate_argv(config: Config) -> list[str]:
    return config.review_gate


def missing_gate_error(argv: list[str]) -> WorkerError:
    """What a user needs to know when the gate is not there (the old tool only said WARN)."""
    configured = argv != shlex.split(default("worker.reviewGate") or "")
    what = f"review gate '{argv[0]}' not found" + (
        " (from git config worker.reviewGate)" if configured else " on PATH"
    )
    return WorkerError(
        f"{what}\n"
        "A review gate is a command you choose (tests, linters, a reviewing agent...) that\n"
        "git worker runs in a worker's worktree before it may be merged: exit 0 = passed,\n"
        "anything else = blocked. It gets GIT_WORKER_ID, GIT_WORKER_BRANCH, GIT_WORKER_BASE\n"
        "and GIT_WORKER_WORKTREE in its environment.",
        hint="set one:  git config worker.reviewGate 'make check'\n"
             "      or turn automatic review off:  git config worker.review false",
    )


def locate(argv: list[str], main_worktree: str) -> str | None:
    """The gate's executable (absolute), or None.

    A path with a '/' is taken relative to the *main* worktree, not the worker's: the
    branch under review must not be able to change the program that judges it.
    """
    program = os.path.expanduser(argv[0])
    if "/" in program:
        path = os.path.join(main_worktree, program)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    return shutil.which(program)


def run_gate(repo: Repo, config: Config, worker_id: str, *, echo: BinaryIO | None,
             force: bool = False) -> Outcome:
    """Run the gate for ``worker_id`` and record the result. ``echo`` also gets the output.

    Raises WorkerError (with setup guidance) when the gate is missing, and (unless
    ``force``) when the worktree is not a registered worktree of this repository on the
    worker's branch; the failure is recorded first (status `error`), so `show` and
    `merge` know the review did not happen.
    """
    entry = store.get(repo, worker_id)
    record = entry.record
    if record.state == State.SPAWNING:
        raise WorkerError(f"'{worker_id}' is still being spawned", hint="wait, then review it")
    if not os.path.isdir(record.worktree):
        raise WorkerError(f"the worktree of '{worker_id}' ({record.worktree}) is missing",
                          hint="git worker fsck explains the drift")
    argv = gate_argv(config)
    tip = repo.read_ref(record.branch)
    runtime = RuntimeDir.of(repo, worker_id)
    if not os.path.isdir(runtime.path) or os.path.islink(runtime.path):
        make_runtime_dir(repo, worker_id)
    log_path = runtime.review_log

    trouble = worktrees.problem(repo, record.worktree, record.branch) or (
        worktrees.config_problem(repo, record.worktree, runtime.path))
    if trouble and not force:
        # The gate would run in (and its git would read) a repository of the agent's
        # making: the `.git` there is not this repository's worktree administration.
        _refuse(repo, worker_id, tip, log_path, WorkerError(
            f"refusing to review '{worker_id}': {trouble}",
            hint="git worker fsck explains the drift; git worker review --force "
                 f"{worker_id} runs the gate there anyway"))
    program = locate(argv, repo.main_worktree)
    if program is None:
        _refuse(repo, worker_id, tip, log_path, missing_gate_error(argv))

    env = clean_env({
        "GIT_WORKER_ID": record.id,
        "GIT_WORKER_BRANCH": record.branch,
        "GIT_WORKER_BASE": record.base["name"],
        "GIT_WORKER_BASE_OID": record.base["oid"],
        "GIT_WORKER_COMMIT": tip or "",
        "GIT_WORKER_WORKTREE": record.worktree,
        **leases.environment(config, record),
    })
    timeout = config.review_timeout
    with open(log_path, "wb", opener=private) as log:
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        code = _run([program, *argv[1:]], record.worktree, env, log, echo, timeout)
        log.write(f"[exit {code}]\n".encode() if code is not None else
                  f"[stopped: still running after {timeout:g} s]\n".encode())
    if code is None:
        _record(repo, worker_id, Outcome(ERROR, None, log_path, tip))
        raise WorkerError(
            f"the review gate of '{worker_id}' ran longer than worker.reviewTimeout "
            f"({timeout:g} s) and was stopped; log: {log_path}",
            hint="make the gate faster, or allow it more time: "
                 "git config worker.reviewTimeout 7200")
    outcome = Outcome(PASSED if code == 0 else BLOCKED, code, log_path, tip)
    _record(repo, worker_id, outcome)
    return outcome


def _refuse(repo: Repo, worker_id: str, tip: str | None, log_path: str,
            error: WorkerError) -> NoReturn:
    """Record a review that could not run (status `error`, the reason in its log)."""
    with open(log_path, "wb", opener=private) as log:
        log.write(f"{error}\n".encode())
    _record(repo, worker_id, Outcome(ERROR, None, log_path, tip))
    raise error


def _run(argv: list[str], cwd: str, env: dict[str, str], log: BinaryIO,
         echo: BinaryIO | None, timeout: float) -> int | None:
    """The gate's exit code; None if it ran out of time. It runs in a process group of
    its own, which what it starts inherits: a timeout or ^C kills the whole group."""
    with _interrupts_end_the_gate() as gate:
        try:
            gate.child = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE if echo else log,
                                          stderr=subprocess.STDOUT, process_group=0)
        except OSError as e:  # found, but cannot be executed (bad #! line, permissions)
            log.write(f"cannot run {argv[0]}: {e.strerror}\n".encode())
            return 126
        child = gate.child
        gate.deliver()  # a ^C that came while Popen was starting it
        expired = threading.Event()
        timer = threading.Timer(timeout, _expire, (child, expired))
        timer.daemon = True
        try:
            timer.start()
            if echo is not None:
                assert child.stdout is not None
                out = child.stdout
                # os.read: whatever the gate has written so far, so its progress shows as
                # it runs. The loop ends when every process holding the pipe has gone.
                for chunk in iter(lambda: os.read(out.fileno(), 65536), b""):
                    log.write(chunk)
                    echo.write(chunk)
                    echo.flush()
            code = child.wait()
        except BaseException:  # ^C: in a group of its own the gate did not get the SIGINT
            _kill_group(child)
            child.wait()
            raise
        finally:
            timer.cancel()
    return None if expired.is_set() else code


class _Gate:
    """The gate being run, for the SIGINT handler of `_interrupts_end_the_gate`."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.pending = False

    def interrupt(self, signum: int, frame: object) -> None:
        if self.child is None:  # forked, perhaps, but its pid not known yet: see deliver()
            self.pending = True
            return
        _kill_group(self.child)  # first: a second ^C (git passes each on) cannot skip it
        raise KeyboardInterrupt

    def deliver(self) -> None:
        if self.pending:
            self.interrupt(signal.SIGINT, None)


@contextlib.contextmanager
def _interrupts_end_the_gate() -> Iterator[_Gate]:
    """While the gate runs, a ^C kills its group in the signal handler itself, before the
    KeyboardInterrupt unwinds anything. An `except` that kills it is not enough: the ^C
    can land inside Popen (after the fork) or a second one inside that `except`, and a
    gate left running outlives git-worker (its shell and everything it started).
    Only where ^C is Python's default (the main thread, not ignored by whoever ran us)."""
    gate = _Gate()
    own = (threading.current_thread() is threading.main_thread()
           and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if own:
        signal.signal(signal.SIGINT, gate.interrupt)
    try:
        yield gate
    finally:
        if own:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _expire(child: subprocess.Popen[bytes], expired: threading.Event) -> None:
    """The gate's time is up: mark it (unless it has exited and only a child of its holds
    the output open), and kill its group."""
    if child.poll() is None:
        expired.set()
    _kill_group(child)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it has just ended


def run_theirs(repo: Repo, config: Config, theirs: team.Theirs, *,
               echo: BinaryIO | None) -> Outcome:
    """Run the gate on another host's worker: on its published branch (fetched by
    team.theirs), checked out in a scratch worktree. Its record is that host's: the verdict
    is kept in this clone (team.note_review), where merge here reads it."""
    record, tip = theirs.record, theirs.tip
    if record.state == "spawning":
        raise WorkerError(f"'{record.id}' is still being spawned on {theirs.host}",
                          hint="wait, then review it")
    log_path = team.review_log(repo, record.id)
    open(log_path, "wb", opener=private).close()  # this review's log only
    with scratch.checkout(repo, tip) as path:
        code = run_on(repo, config, record, checkout=path, commit=tip,
                      target=record.base["name"], target_oid=record.base["oid"],
                      landing=[record.id], log_path=log_path, echo=echo)
    status = ERROR if code is None else PASSED if code == 0 else BLOCKED
    team.note_review(repo, record.id, {"status": status, "at": now(),
                                       "commit": tip, "exit_code": code})
    if code is None:
        raise WorkerError(
            f"the review gate of '{record.id}' ran longer than worker.reviewTimeout and "
            f"was stopped; log: {log_path}",
            hint="make the gate faster, or allow it more time: "
                 "git config worker.reviewTimeout 7200")
    return Outcome(status, code, log_path, tip)


def run_on(repo: Repo, config: Config, record: Record, *, checkout: str, commit: str,
           target: str, target_oid: str, landing: list[str], log_path: str,
           echo: BinaryIO | None = None) -> int | None:
    """Run the gate on a result that is not the worker's branch (land's combined result,
    checked out at ``checkout``); records nothing. Its exit code, or None if it ran out
    of time. Raises the setup guidance when the gate is missing."""
    argv = gate_argv(config)
    program = locate(argv, repo.main_worktree)
    if program is None:
        raise missing_gate_error(argv)
    env = clean_env({
        "GIT_WORKER_ID": record.id,
        "GIT_WORKER_BRANCH": record.branch,
        "GIT_WORKER_BASE": target,
        "GIT_WORKER_BASE_OID": target_oid,
        "GIT_WORKER_COMMIT": commit,
        "GIT_WORKER_WORKTREE": checkout,
        "GIT_WORKER_LANDING": " ".join(landing),
        **leases.environment(config, record),  # the worker's ports and slot, as its own gate
    })
    timeout = config.review_timeout
    with open(log_path, "ab", opener=private) as log:
        log.write(f"$ {' '.join(argv)}  # {' + '.join(landing)} at {commit[:12]}\n".encode())
        log.flush()
        code = _run([program, *argv[1:]], checkout, env, log, echo, timeout)
        log.write(f"[exit {code}]\n".encode() if code is not None else
                  f"[stopped: still running after {timeout:g} s]\n".encode())
    return code


def record(repo: Repo, worker_id: str, outcome: Outcome, event: str | None = None,
           **extra: object) -> None:
    """Record a review's outcome (``extra`` fields go into `review`)."""
    _record(repo, worker_id, outcome, event, extra)


def _record(repo: Repo, worker_id: str, outcome: Outcome, event: str | None = None,
            extra: dict[str, object] | None = None) -> None:
    def change(r: Record) -> None:
        earlier = {k: v for k, v in (r.review or {}).items() if k != "combined_with"}
        r.review = {**earlier, "status": outcome.status, "at": now(),
                    "commit": outcome.commit, "exit_code": outcome.exit_code, **(extra or {})}
        if r.state not in _SETTLED:
            return  # an agent still at work keeps its live state
        if outcome.status == PASSED:
            r.state = State.REVIEWED
        elif r.state == State.REVIEWED:  # a later review that fails takes the badge away
            r.state = (State.READY if r.exit_code is None
                       else State.EXITED if r.exit_code == 0 else State.FAILED)

    store.update(repo, worker_id, change, event or f"review: {outcome.status}")


def required(config: Config, record: Record) -> bool:
    """Whether this worker is reviewed: `spawn --review/--no-review`, else worker.review."""
    chosen = (record.review or {}).get("auto")
    return config.review if chosen is None else bool(chosen)


def after_exit(repo: Repo, worker_id: str, code: int) -> WorkerError | None:
    """worker.review true: run the gate when the agent exits 0 (called by lifecycle).
    A gate that could not run is recorded (status error, review.log) and returned, for
    the caller to say."""
    if code != 0:
        return None
    entry = store.read(repo, worker_id)
    if entry is None:
        return None
    try:
        # The repository's settings, not the worktree's: the agent that has just exited
        # could write those (see Config.load).
        config = Config.load(repo.common_dir)
        if not required(config, entry.record):
            return None
        run_gate(repo, config, worker_id, echo=None)
    except WorkerError as e:  # recorded (status error) and logged in review.log
        return e
    return None


def describe(review: dict[str, object]) -> str:
    """One line for humans: 'passed 2026-…Z at abc1234', 'never'."""
    status = review.get("status")
    if not status:
        return "never"
    commit = review.get("commit")
    at = f" at {str(commit)[:7]}" if commit else ""
    return f"{status} {review.get('at') or ''}{at}".strip()
