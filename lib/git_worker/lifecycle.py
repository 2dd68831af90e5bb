"""State transitions recorded after spawn: the agent's exit, and its stop."""

from __future__ import annotations

from git_worker import registry
from git_worker.repo import Repo


def record_exit(repo: Repo, worker_id: str, code: int) -> None:
    def change(r: registry.Record) -> None:
        r.exit_code = code
        if r.state in registry.LIVE_STATES:
            r.state = "exited" if code == 0 else "failed"

    registry.update(repo, worker_id, change, f"exited {code}")
    # worker.review true: the gate runs by itself once the agent has finished well.
    from git_worker import review

    review.after_exit(repo, worker_id, code)
