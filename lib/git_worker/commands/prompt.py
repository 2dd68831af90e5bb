"""git worker prompt: print the prompt a worker's agent received (as rendered at spawn)."""

from __future__ import annotations

import os
import sys

from git_worker import output, registry
from git_worker.errors import WorkerError
from git_worker.repo import Repo


def run(repo: Repo, worker_id: str) -> int:
    registry.get(repo, worker_id)
    path = os.path.join(registry.runtime_dir(repo, worker_id), "prompt.md")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise WorkerError(f"the prompt of '{worker_id}' is missing ({path})",
                          hint="its runtime files are gone; git worker fsck says more") from None
    sys.stdout.buffer.write(output.visible_bytes(data) if sys.stdout.isatty() else data)
    sys.stdout.buffer.flush()
    return 0
