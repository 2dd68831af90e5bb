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
from collections.abc import Iterator
from contextlib import contextmanager

from git_worker.registry.runtime import ensure_runtime_root, runtime_root

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_worker.repo import Repo


@contextmanager
def queue(repo: Repo) -> Iterator[None]:
    """One process at a time counts running workers and starts new ones
    (worker.maxConcurrent): a flock on <git-common-dir>/workers/, which every spawn makes."""
    with _flock(ensure_runtime_root(repo)):
        yield


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


@contextmanager
def merge(repo: Repo) -> Iterator[None]:
    """One git-worker merge at a time per repository: a flock on <git-common-dir>/refs/.

    The ref compare-and-swap alone keeps every update, but a merge into a checked-out
    branch passes through moments where that worktree's index is ahead of its HEAD; a
    second merge looking then would see "uncommitted changes"."""
    with _flock(os.path.join(repo.common_dir, "refs")):
        yield


@contextmanager
def tracker(common_dir: str) -> Iterator[None]:
    """One bd call at a time among git-worker processes on this repository: a flock on the
    git common dir itself. Without that directory there is nothing to lock (and git will
    complain about it soon enough)."""
    try:
        fd = os.open(common_dir, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def clone_id(team_dir: str) -> Iterator[None]:
    """The first commands of a clone must not pick two worker.hostIds: a flock on
    <git-common-dir>/worker-team/hostid.lock. A file, kept, in a directory the team registry
    keeps anyway (its views of the remotes)."""
    with _flock(os.path.join(team_dir, "hostid.lock"), _LOCK_FILE):
        yield


@contextmanager
def publishing(team_dir: str) -> Iterator[None]:
    """One process of a clone at a time publishes its records to the team's remote: a flock
    on <git-common-dir>/worker-team/publish.lock (kept, beside hostid.lock). Two processes
    of one clone pushing at once only make each other's leases stale, and under load one
    of them can run out of retries while holding the newest record: it stays unpublished."""
    with _flock(os.path.join(team_dir, "publish.lock"), _LOCK_FILE):
        yield


@contextmanager
def lease_store(directory: str) -> Iterator[None]:
    """The lease store of this user, shared by every repository: a flock on leases.lock in
    ``directory`` ($XDG_STATE_HOME/git-worker/), beside the store it guards (leases.json is
    replaced atomically, so the lock cannot be the store itself). OSError when the lock
    cannot be taken (e.g. ENOLCK on a network file system without locks)."""
    with _flock(os.path.join(directory, "leases.lock"), _LOCK_FILE):
        yield


_LOCK_FILE = os.O_WRONLY | os.O_CREAT  # a lock file: made (0600) if need be, and kept


@contextmanager
def _flock(path: str, flags: int = os.O_RDONLY) -> Iterator[None]:
    """flock(2) on ``path``: a directory, opened read-only (nothing is created), or with
    _LOCK_FILE a lock file."""
    fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
