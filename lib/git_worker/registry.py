"""The registry: one ref per worker, refs/workers/<id>, in the repository itself.

Each ref points to a commit whose tree holds `worker.json`; every state change is a new
commit whose parent is the previous state and whose message is the event. So
`git show refs/workers/<id>:worker.json` is the current record and
`git log refs/workers/<id>` its history, with plain git. Every write is a
compare-and-swap against the commit read before it: two processes can never both own
an id, and no update is lost.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from git_worker import refnames
from git_worker.errors import WorkerError
from git_worker.repo import IDENTITY, Repo

SCHEMA_VERSION = 1
RECORD_FILE = "worker.json"
_CAS_ATTEMPTS = 20

STATES = ("spawning", "ready", "queued", "running", "waiting", "exited", "failed", "stopped",
          "reviewed", "merged")
LIVE_STATES = ("spawning", "running", "waiting")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Record:
    """worker.json. Field names and meanings are documented in README ("worker.json")."""

    id: str
    state: str
    branch: str
    base: dict[str, Any]  # name, oid, fetched, fetch_error
    worktree: str
    agent: str | None = None
    model: str | None = None
    launcher: dict[str, Any] = field(default_factory=lambda: {"kind": None})
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    exit_code: int | None = None
    review: dict[str, Any] = field(default_factory=lambda: {"status": None, "at": None})
    task: dict[str, Any] = field(default_factory=lambda: {"title": None, "source": "cli"})
    spawn_steps: list[str] = field(default_factory=list)
    host: str = field(default_factory=socket.gethostname)
    spawner: dict[str, Any] | None = None  # {pid, start} of the process spawning it
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Record:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("worker.json is not an object")
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Entry:
    """A record as read, with the commit it was read from (for compare-and-swap)."""

    record: Record
    oid: str


@dataclass
class Corrupt:
    """A registry ref that does not hold a readable record."""

    id: str
    oid: str
    reason: str


# --- reading -----------------------------------------------------------------------------


def read(repo: Repo, worker_id: str) -> Entry | None:
    oid = repo.read_ref(refnames.registry(worker_id))
    if oid is None:
        return None
    found = _load(repo, worker_id, oid)
    if isinstance(found, Corrupt):
        raise WorkerError(
            f"the registry record of '{worker_id}' is unreadable: {found.reason}",
            hint="run: git worker fsck",
        )
    return found


def get(repo: Repo, worker_id: str) -> Entry:
    entry = read(repo, worker_id)
    if entry is None:
        raise WorkerError(f"no worker '{worker_id}'", hint="git worker list shows the workers")
    return entry


def all_entries(repo: Repo) -> list[Entry | Corrupt]:
    return [_load(repo, wid, oid) for wid, oid in sorted(repo.refs_under(refnames.REGISTRY).items())]


def ids(repo: Repo) -> list[str]:
    return sorted(repo.refs_under(refnames.REGISTRY))


def history(repo: Repo, worker_id: str) -> Iterator[tuple[str, int, str, Record | None]]:
    """(commit, time, event, record) from newest to oldest."""
    oid: str | None = get(repo, worker_id).oid
    while oid:
        commit = repo.commit(oid)
        found = _load(repo, worker_id, oid)
        record = found.record if isinstance(found, Entry) else None
        yield oid, commit.commit_time, commit.message.decode(errors="replace").strip(), record
        oid = commit.parents[0].decode() if commit.parents else None


def _load(repo: Repo, worker_id: str, oid: str) -> Entry | Corrupt:
    try:
        commit = repo.commit(oid)
        tree = repo.dulwich[commit.tree]
        _, blob_id = tree[RECORD_FILE.encode()]  # type: ignore[index]
        record = Record.from_json(repo.dulwich[blob_id].data)  # type: ignore[attr-defined]
    except (WorkerError, KeyError, ValueError, TypeError) as e:
        return Corrupt(worker_id, oid, str(e) or type(e).__name__)
    return Entry(record, oid)


# --- writing -----------------------------------------------------------------------------


def _write_commit(repo: Repo, record: Record, parent: str | None, event: str) -> str:
    from dulwich.objects import Blob, Commit, Tree

    record.updated_at = now()
    blob = Blob.from_string(record.to_json())
    tree = Tree()
    tree.add(RECORD_FILE.encode(), 0o100644, blob.id)
    commit = Commit()
    commit.tree = tree.id
    commit.parents = [parent.encode()] if parent else []
    commit.author = commit.committer = IDENTITY
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = f"{event}\n".encode()
    store = repo.dulwich.object_store
    for obj in (blob, tree, commit):
        store.add_object(obj)
    return commit.id.decode()


def claim(repo: Repo, record: Record, event: str = "spawn: claimed") -> Entry:
    """Create refs/workers/<id>; only one process can ever win this for an id."""
    oid = _write_commit(repo, record, None, event)
    if not repo.create_ref(refnames.registry(record.id), oid, f"git-worker: {event}"):
        raise WorkerError(f"worker '{record.id}' already exists")
    return Entry(record, oid)


def update(
    repo: Repo, worker_id: str, change: Callable[[Record], None], event: str
) -> Entry:
    """Apply ``change`` to the current record and commit it, as a compare-and-swap.

    When another process moved the ref in between, re-read and re-apply: no update is
    lost. Raises WorkerError when the worker was removed meanwhile.
    """
    ref = refnames.registry(worker_id)
    for _ in range(_CAS_ATTEMPTS):
        entry = get(repo, worker_id)
        change(entry.record)
        new = _write_commit(repo, entry.record, entry.oid, event)
        if repo.update_ref(ref, entry.oid, new, f"git-worker: {event}"):
            return Entry(entry.record, new)
    raise WorkerError(f"worker '{worker_id}' keeps changing under us; try again")


def set_state(repo: Repo, worker_id: str, state: str, event: str | None = None) -> Entry:
    def change(r: Record) -> None:
        r.state = state

    return update(repo, worker_id, change, event or state)


def remove(repo: Repo, worker_id: str, oid: str) -> bool:
    """Delete the record if it is still at ``oid``."""
    return repo.delete_ref(refnames.registry(worker_id), oid, "git-worker: removed")


# --- runtime files (not history) --------------------------------------------------------


def runtime_dir(repo: Repo, worker_id: str) -> str:
    """<git-common-dir>/workers/<id>/: log, rendered prompt, exit status, pid."""
    return os.path.join(repo.common_dir, "workers", worker_id)
