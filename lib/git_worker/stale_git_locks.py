"""git's lock files (`<file>.lock`) that a killed git (or git-worker) left behind.

git takes a ref by creating `refs/heads/x.lock` with O_EXCL and renames it over the ref
when done; killed in between, the lock stays and every later update of that ref fails
(`spawn` of that id, `fsck --repair`) until someone deletes it. git itself never does: it
waits core.filesRefLockTimeout (100 ms) or core.packedRefsTimeout (1 s), then gives up.

A lock file records no holder, so "stale" is proven from the outside: no process of the
file's owner has it open (read from /proc/<pid>/fd), and it is older than STALE_AFTER,
far beyond git's own timeouts. A lock that cannot be proven stale is named, never deleted.

(The locks git-worker itself takes are flocks, in locks.py: never left behind.)
"""

from __future__ import annotations

import os
import time

SUFFIX = ".lock"
STALE_AFTER = 60.0  # seconds; git waits 0.1 s for a ref lock and 1 s for packed-refs


class Lock:
    def __init__(self, path: str, st: os.stat_result) -> None:
        self.path = path
        self.age = time.time() - st.st_mtime
        self.identity = (st.st_ino, st.st_mtime_ns)  # this file, not a new one of that name
        # pids that have it open; None when that cannot be known. git closes a ref lock
        # once written and renames it at commit, so the age is what proves most locks stale.
        self.holders = _holders(path, st.st_uid)

    @property
    def stale(self) -> bool:
        return self.holders == [] and self.age > STALE_AFTER

    def why_kept(self) -> str:
        """Why it is not provably stale (for a human to judge)."""
        if self.holders:
            return "held open by pid " + ", ".join(map(str, self.holders))
        if self.holders is None:
            return "its holder cannot be checked (processes of another user)"
        return f"only {self.age:.0f} s old: a git may be using it now"


def find(common_dir: str) -> list[Lock]:
    """The lock files in the repository's git dir: refs (any depth), the files at its top
    (packed-refs, config, HEAD, index…) and each worktree's administration."""
    paths = []
    for top, _, files in os.walk(os.path.join(common_dir, "refs")):
        paths += [os.path.join(top, f) for f in files if f.endswith(SUFFIX)]
    for folder in (common_dir, *_admin_dirs(common_dir)):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        paths += [os.path.join(folder, n) for n in names if n.endswith(SUFFIX)]
    return [lock for lock in map(_read, sorted(paths)) if lock is not None]


def remove_if_stale(lock: Lock) -> list[str]:
    """Delete a lock proven stale — checked again, and still the same file; what was done."""
    from git_worker.errors import WorkerError

    again = _read(lock.path)
    if again is None:
        return [f"{lock.path} is gone already"]
    if not again.stale or again.identity != lock.identity:
        raise WorkerError(f"{lock.path} changed meanwhile; left alone")
    os.unlink(lock.path)
    return [f"deleted the stale lock {lock.path}"]


def _read(path: str) -> Lock | None:
    try:
        return Lock(path, os.lstat(path))
    except FileNotFoundError:
        return None  # released meanwhile


def _admin_dirs(common_dir: str) -> list[str]:
    root = os.path.join(common_dir, "worktrees")
    try:
        return [os.path.join(root, n) for n in sorted(os.listdir(root))]
    except OSError:
        return []


def _holders(path: str, owner: int) -> list[int] | None:
    """The pids (of the file's owner: the user whose git made it) that have ``path`` open;
    None when one of that user's processes cannot be looked into."""
    target = os.path.realpath(path)
    found = []
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            if os.stat(f"/proc/{pid}").st_uid != owner:
                continue
            fds = os.listdir(f"/proc/{pid}/fd")
        except FileNotFoundError:
            continue  # ended meanwhile
        except PermissionError:
            return None
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    found.append(pid)
                    break
            except OSError:
                continue
    return found
