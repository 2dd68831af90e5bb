"""git worker rm: remove workers — never losing work without --force."""

from __future__ import annotations

import os
import sys

from git_worker import output, removal
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.registry.record import FREE
from git_worker.repo import Repo


def run(repo: Repo, ids: list[str], *, force: bool, keep_branch: bool,
        config: Config | None = None) -> int:
    failed = 0
    here = _cwd()
    held_a_slot = False
    for worker_id in dict.fromkeys(ids):
        try:
            removed = removal.remove(repo, worker_id, force=force, keep_branch=keep_branch,
                                     config=config)
        except WorkerError as e:
            print(f"error: {output.visible(worker_id)}: {output.visible(e, lines=True)}",
                  file=sys.stderr)
            failed += 1
            continue
        done = (["branch kept"] if keep_branch else []) + removed.ended
        print(f"removed {worker_id}" + (f" ({'; '.join(done)})" if done else ""))
        for note in removed.notes:
            print(f"warning: {worker_id}: {output.visible(note)}", file=sys.stderr)
        if here is not None and _inside(here, removed.worktree):
            # Our process leaves; the caller's shell stays in a directory that is gone.
            print(f"your shell was in its worktree, which is gone: cd {repo.main_worktree}")
        held_a_slot = held_a_slot or removed.state not in FREE
    if held_a_slot:  # a removed worker may have held a worker.maxConcurrent slot
        from git_worker import lifecycle  # with json and subprocess: only then

        lifecycle.start_queued(repo)
    return 1 if failed else 0


def _cwd() -> str | None:
    try:
        return os.path.realpath(os.getcwd())
    except OSError:  # it is already gone
        return None


def _inside(path: str, directory: str) -> bool:
    directory = os.path.realpath(directory)
    return path == directory or path.startswith(directory + os.sep)
