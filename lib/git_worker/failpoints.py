"""Failpoints: make a transaction fail, or die, at a named step — for the test suite.

GIT_WORKER_FAILPOINTS=spawn.worktree:error,rm.branch:kill
  error → raise a WorkerError at that step (the transaction must roll back);
  kill  → SIGKILL this process at that step (fsck --repair must recover);
  crash → raise an unexpected exception (the CLI must report a bug: exit 3).
Not in ACTIONS (only where a test says what it must do):
  interrupt → send this process SIGINT (a ^C at that very step);
  pause → say "failpoint STEP paused (pid N)" on stderr and wait there until a signal
          ends the process (tests send SIGINT: the transaction must roll back);
  wait  → wait there until GIT_WORKER_FAILPOINTS_AFTER's path exists, then go on (what
          another process does at that very step, e.g. write a file in the worktree).
GIT_WORKER_FAILPOINTS_AFTER=PATH: a step that fails first waits (up to a minute) until
PATH exists, e.g. until a launched agent has started what a test means the rollback to end.
Unset in normal use; checking it costs one dict lookup.
"""

from __future__ import annotations

import os

# _signal: signal's C half (see git.py), not signal, whose enums every command would
# import for failpoints only tests set.
from _signal import SIGINT, SIGKILL  # type: ignore[import-not-found]  # no stub

from git_worker.errors import WorkerError

ENV = "GIT_WORKER_FAILPOINTS"
AFTER_ENV = "GIT_WORKER_FAILPOINTS_AFTER"
_AFTER_TIMEOUT = 60.0  # seconds; then the step fails anyway (the test then says why)

# Every step of every transaction, in order. tests/test_faults.py fails each one with each
# action, and checks that this list is exactly the hit() calls in the code.
STEPS = (
    "spawn.claim", "spawn.branch", "spawn.checkout", "spawn.worktree", "spawn.files", "spawn.setup",
    "spawn.bd-claim", "spawn.launch",
    "start.launch",
    "rm.mark", "rm.stop", "rm.worktree", "rm.branch",
    "merge.compute", "merge.record",
)
ACTIONS = ("error", "kill", "crash")  # not "pause" nor "wait": they wait for a test


def hit(step: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    for item in spec.split(","):
        name, _, action = item.strip().partition(":")
        if name != step:
            continue
        _wait_for(os.environ.get(AFTER_ENV))
        if action == "wait":
            return
        if action == "interrupt":
            os.kill(os.getpid(), SIGINT)
            return
        if action == "kill":
            os.kill(os.getpid(), SIGKILL)
        if action == "pause":
            import sys
            import time

            print(f"failpoint {step} paused (pid {os.getpid()})", file=sys.stderr, flush=True)
            while True:
                time.sleep(60)
        if action == "crash":
            raise RuntimeError(f"failpoint {step} crashed ({ENV})")
        raise WorkerError(f"failpoint {step} triggered ({ENV})")


def _wait_for(path: str | None) -> None:
    import time

    deadline = time.monotonic() + _AFTER_TIMEOUT
    while path and not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
