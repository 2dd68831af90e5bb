"""Which workers are done with: their work is in the branch it lands in, nothing uncommitted.

A worker is prunable when git-worker merged it, or when every change of its branch is in
its landing target anyway — merged with plain `git merge`, fast-forwarded, squash-merged
or cherry-picked (recognised by the tree change, see merge.work_landed) — and its worktree
holds nothing uncommitted and no agent runs in it. Removal itself goes through
removal.remove, which checks again and never deletes work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from git_worker import merge, refnames, removal, worktrees
from git_worker.errors import UsageError
from git_worker.registry import store
from git_worker.registry.record import Corrupt, Record, State
from git_worker.registry.runtime import RuntimeDir
from git_worker.repo import Repo

# States whose worker belongs to a process in the middle of something.
_BUSY = (State.SPAWNING, State.REMOVING, State.QUEUED)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass
class Verdict:
    id: str
    prunable: bool
    why: str  # "merged into main", "squash-merged into main", "2 uncommitted file(s)"…
    worktree: str
    size: int = 0  # bytes on disk of its worktree


def parse_duration(text: str) -> float:
    """'90s', '30m', '12h', '7d', '2w' (or plain seconds) → seconds."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise UsageError(f"--older-than {text}: expected a duration such as 30m, 12h, 7d, 2w")
    return value * _UNITS[unit]


def judge(repo: Repo, *, ids: list[str] | None = None,
          older_than: float | None = None) -> list[Verdict]:
    """A verdict for each worker (or each of ``ids``), in id order."""
    wanted = set(ids) if ids else None
    now = datetime.now(UTC)
    verdicts = []
    for entry in store.all_entries(repo):
        if isinstance(entry, Corrupt):
            continue
        r = entry.record
        if wanted and r.id not in wanted:
            continue
        if older_than is not None and _age(r.created_at, now) < older_than:
            continue
        verdicts.append(_judge(repo, r))
    for missing in sorted((wanted or set()) - {v.id for v in verdicts}):
        store.get(repo, missing)  # raises "no worker" for a typo
    return verdicts


def _judge(repo: Repo, r: Record) -> Verdict:
    def keep(why: str) -> Verdict:
        return Verdict(r.id, False, why, r.worktree)

    if r.state in _BUSY:
        return keep(f"it is {r.state}")
    tip = repo.read_ref(r.branch)
    if tip is None:
        return keep(f"branch {refnames.short(r.branch)} is missing (git worker fsck)")
    if r.state == State.MERGED and r.merge and r.merge.get("tip") == tip:
        how = f"merged into {refnames.short(str(r.merge['into']))} by git-worker"
    else:
        target = removal.landed(repo, r, tip)
        if target is None:
            return keep("not merged" if tip != r.base.get("oid") else "no commits yet")
        target_tip = repo.read_ref(target) or ""
        plain = merge.is_ancestor(repo, tip, target_tip)
        how = (f"merged into {refnames.short(target)}" if plain
               else f"its change is in {refnames.short(target)} (squash-merged or picked)")
    if merge.still_working(repo, r):
        return keep(f"its agent is still {r.state}")
    if os.path.isdir(r.worktree):
        dirty = worktrees.dirty_paths(repo, r.worktree, RuntimeDir.of(repo, r.id).path)
        if dirty:
            return keep(f"{len(dirty)} uncommitted file(s) in its worktree")
    return Verdict(r.id, True, how, r.worktree, disk_usage(r.worktree))


def _age(timestamp: str, now: datetime) -> float:
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return 0.0  # unknown age: never old enough
    return (now - then).total_seconds()


def disk_usage(path: str) -> int:
    """Bytes a directory tree occupies on disk (like du: blocks, hard links once, no
    symlinks followed); 0 when it is not there."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(path, onerror=lambda _: None):
        for name in (*dirs, *files):
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def remove(repo: Repo, verdict: Verdict) -> None:
    """Remove a prunable worker; removal checks again that nothing would be lost."""
    removal.remove(repo, verdict.id, force=False, keep_branch=False)
