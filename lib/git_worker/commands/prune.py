"""git worker prune (and rm --merged): remove the workers whose work has landed."""

from __future__ import annotations

import sys

from git_worker import lifecycle, output, prune
from git_worker.errors import WorkerError
from git_worker.repo import Repo


def run(repo: Repo, *, ids: list[str] | None = None, older_than: str | None,
        dry_run: bool, as_json: bool) -> int:
    seconds = prune.parse_duration(older_than) if older_than else None
    verdicts = prune.judge(repo, ids=ids, older_than=seconds)
    removed, failed = [], []
    for v in verdicts:
        if not v.prunable or dry_run:
            continue
        try:
            prune.remove(repo, v)
        except WorkerError as e:
            failed.append((v, e.message))
            continue
        removed.append(v)
    if removed:
        lifecycle.start_queued(repo)  # a removed worker may have held a slot
    if as_json:
        output.print_json([{"id": v.id, "prunable": v.prunable, "why": v.why,
                            "worktree": v.worktree, "size": v.size,
                            "removed": v in removed,
                            "error": next((m for f, m in failed if f is v), None)}
                           for v in verdicts])
        return 1 if failed else 0
    verb = "would remove" if dry_run else "removed"
    done = [v for v in verdicts if v.prunable] if dry_run else removed
    for v in done:
        print(f"{verb} {v.id}: {v.why} ({output.size(v.size)})")
    for v, message in failed:
        print(f"error: {v.id}: {message}", file=sys.stderr)
    for v in verdicts:
        if not v.prunable:
            print(f"kept {v.id}: {v.why}")
    if not done and not failed:
        print("nothing to prune: no worker's work has landed")
    else:
        total = sum(v.size for v in done)
        print(f"{'would free' if dry_run else 'freed'} {output.size(total)} "
              f"({len(done)} worker(s))")
    return 1 if failed else 0
