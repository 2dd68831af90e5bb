"""State transitions recorded after spawn: the agent's exit, and its stop."""

from __future__ import annotations

from git_worker import registry
from git_worker.repo import Repo


def exit_state(code: int) -> str:
    return "exited" if code == 0 else "failed"


def record_exit(repo: Repo, worker_id: str, code: int) -> None:
    def change(r: registry.Record) -> None:
        r.exit_code = code
        # A spawning record stays so: its spawner sets the final state (or, if the
        # spawner died, recovery decides what to keep).
        if r.state in ("running", "waiting"):
            r.state = exit_state(code)

    registry.update(repo, worker_id, change, f"exited {code}")
    # worker.review true: the gate runs by itself once the agent has finished well.
    from git_worker import review

    review.after_exit(repo, worker_id, code)
