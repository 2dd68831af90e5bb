"""git worker prompt: print the prompt a worker's agent received (as rendered at spawn)."""

from __future__ import annotations

import sys

from git_worker import output
from git_worker.errors import WorkerError
from git_worker.registry import store
from git_worker.registry.runtime import RuntimeDir
from git_worker.repo import Repo


def run(repo: Repo, worker_id: str) -> int:
    store.get(repo, worker_id)
    path = RuntimeDir.of(repo, worker_id).prompt
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise WorkerError(f"the prompt of '{worker_id}' is missing ({path})",
                          hint="its runtime files are gone; git worker fsck says more") from None
    sys.stdout.buffer.write(output.visible_bytes(data) if sys.stdout.isatty() else data)
    sys.stdout.buffer.flush()
    return 0
