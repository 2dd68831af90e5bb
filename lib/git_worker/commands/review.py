"""git worker review: run the review gate on one worker; exit 0 passed, 1 blocked/missing."""

from __future__ import annotations

import shlex
import sys

from git_worker import output, review, team
from git_worker.config import Config
from git_worker.registry import store
from git_worker.repo import Repo


def run(repo: Repo, config: Config, worker_id: str, *, force: bool = False) -> int:
    # Another host's worker (worker.remote): its published branch, fetched first.
    theirs = team.theirs(repo, config, worker_id)
    if theirs is None:
        store.get(repo, worker_id)  # "no worker 'x'" before anything is printed
    argv = review.gate_argv(config)
    if theirs is not None and review.locate(argv, repo.main_worktree) is None:
        raise review.missing_gate_error(argv)
    where = "" if theirs is None else \
        f" (the worker of {theirs.host}, at its published {theirs.tip[:12]})"
    print(output.visible(f"reviewing {worker_id}{where} with: {shlex.join(argv)}"), flush=True)
    outcome = review.run_gate(repo, config, worker_id, echo=sys.stdout.buffer, force=force) \
        if theirs is None else review.run_theirs(repo, config, theirs, echo=sys.stdout.buffer)
    log = output.relpath(outcome.log)
    if outcome.status == review.PASSED:
        print(f"{output.paint('passed', 'green')}: {worker_id} may be merged "
              f"(git worker merge {worker_id}); log: {output.visible(log)}")
        return 0
    print(f"{output.paint('blocked', 'red')}: the review gate exited {outcome.exit_code} for "
          f"{worker_id}; log: {output.visible(log)}", file=sys.stderr)
    print(f"hint: fix the branch and run git worker review {worker_id} again "
          f"(git worker merge --force {worker_id} lands it anyway)", file=sys.stderr)
    return 1
