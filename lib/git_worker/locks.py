"""Every file lock git-worker takes, one context manager each.

All are flock(2): the kernel lets go when the holder dies, so no lock is ever stale and
none needs cleaning up. The first three lock a *directory* that exists anyway, through a
read-only descriptor: nothing is created for them, so nothing is left behind (a failed
spawn must leave no file), and nothing of git's locks a directory this way. Each locks a
different object, so a holder of one never waits on a holder of another for it: spawn
claims a task from bd while it holds the queue, and that cannot deadlock.

(git's own `<file>.lock` files, which a killed git leaves behind, are another matter:
stale_git_locks.py finds them.)
"""

from __future__ import annotations

import fcntl
import os

from git_worker.registry.runtime import ensure_runtime_root, runtime_root

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_worker.repo import Repo


class Flock:
    """flock(2) on ``path``, held for a with block: a directory, opened read-only (nothing
    is created), or with _LOCK_FILE a lock file. ``optional``: a path that cannot be opened
    is no lock, not an error.

    A class rather than contextlib.contextmanager, as every lock here is: contextlib (with
    the functools and collections it imports) costs each command ~3 ms of its start-up."""

    def __init__(self, path: str, flags: int = os.O_RDONLY, *, optional: bool = False) -> None:
        self.path = path
        self.flags = flags
        self.optional = optional
        self._fd: int | None = None

    def __enter__(self) -> None:
        try:
            fd = os.open(self.path, self.flags | os.O_CLOEXEC, 0o600)
        except OSError:
            if self.optional:
                return
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def queue(repo: Repo) -> Flock:
    """One process at a time counts running workers and starts new ones
    (worker.maxConcurrent): a flock on <git-common-dir>/workers/, which every spawn makes."""
    return Flock(ensure_runtime_root(repo))


def queue_busy(repo: Repo) -> bool:
    """Whether some process holds the queue lock now (counting, or starting workers)."""
    try:
        fd = os.open(runtime_root(repo), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we took
    return False


def merge(repo: Repo) -> Flock:
    """One git-worker merge at a time per repository: a flock on <git-common-dir>/refs/.

    The ref compare-and-swap alone keeps every update, but a merge into a checked-out
    branch passes through moments where that worktree's index is ahead of its HEAD; a
    second merge looking then would see "uncommitted changes"."""
    return Flock(os.path.join(repo.common_dir, "refs"))


def tracker(common_dir: str) -> Flock:
    """One bd call at a time among git-worker processes on this repository: a flock on the
    git common dir itself. Without that directory there is nothing to lock (and git will
    complain about it soon enough)."""
    return Flock(common_dir, optional=True)


def clone_id(team_dir: str) -> Flock:
    """The first commands of a clone must not pick two worker.hostIds: a flock on
    <git-common-dir>/worker-team/hostid.lock. A file, kept, in a directory the team registry
    keeps anyway (its views of the remotes)."""
    return Flock(os.path.join(team_dir, "hostid.lock"), _LOCK_FILE)


def publishing(team_dir: str) -> Flock:
    """One process of a clone at a time publishes its records to the team's remote: a flock
    on <git-common-dir>/worker-team/publish.lock (kept, beside hostid.lock). Two processes
    of one clone pushing at once only make each other's leases stale, and under load one
    of them can run out of retries while holding the newest record: it stays unpublished."""
    return Flock(os.path.join(team_dir, "publish.lock"), _LOCK_FILE)


def lease_store(directory: str) -> Flock:
    """The lease store of this user, shared by every repository: a flock on leases.lock in
    ``directory`` ($XDG_STATE_HOME/git-worker/), beside the store it guards (leases.json is
    replaced atomically, so the lock cannot be the store itself). OSError, as the block is
    entered, when the lock cannot be taken (e.g. ENOLCK on a network file system)."""
    return Flock(os.path.join(directory, "leases.lock"), _LOCK_FILE)


_LOCK_FILE = os.O_WRONLY | os.O_CREAT  # a lock file: made (0600) if need be, and kept
