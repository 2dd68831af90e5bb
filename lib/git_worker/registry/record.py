"""worker.json: the record a registry ref holds, its closed set of states, and what an
unreadable one says."""

from __future__ import annotations

import time

from git_worker import compact_json, processes

# typing only for annotations: importing it costs ~5 ms on every list and show.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SCHEMA_VERSION = 1
RECORD_FILE = "worker.json"


class State:
    """A worker's state, as `list` and `show` print it (the manual's STATES section).

    Plain strings, as records keep them in JSON (``record.state == State.RUNNING``); not
    an enum, whose import costs every command ~1.5 ms of its start (measured). ALL is the
    closed set. Every state but VANISHED is recorded; VANISHED is only ever observed
    (probe.observe: no process of a running worker left, no exit code).
    """

    SPAWNING = "spawning"
    READY = "ready"
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    EXITED = "exited"
    FAILED = "failed"
    STOPPED = "stopped"
    REVIEWED = "reviewed"
    MERGED = "merged"
    REMOVING = "removing"
    VANISHED = "vanished"
    ALL = (SPAWNING, READY, QUEUED, RUNNING, WAITING, EXITED, FAILED, STOPPED, REVIEWED,
           MERGED, REMOVING, VANISHED)


RUNNING = (State.RUNNING, State.WAITING)  # an agent process exists (or should)
# A worker in these states holds no worker.maxConcurrent slot and is not in the queue:
# removing it changes nothing the queue waits for (rm then does not look at the queue).
FREE = (State.READY, State.EXITED, State.FAILED, State.STOPPED, State.REVIEWED, State.MERGED)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# What every reader of a record relies on. A record that breaks it (edited by hand, written
# by a broken tool) is reported as unreadable — list goes on, fsck offers its history —
# instead of crashing whichever command touches it first.
_REQUIRED = ("id", "state", "branch", "base", "worktree")
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "state": (str,), "branch": (str,), "base": (dict,), "worktree": (str,),
    "agent": (str, type(None)), "model": (str, type(None)), "launcher": (dict,),
    "created_at": (str,), "updated_at": (str,), "exit_code": (int, type(None)),
    "review": (dict,), "task": (dict,), "spawn_steps": (list,), "host": (str,),
    "owner": (dict, type(None)), "merge": (dict, type(None)), "schema_version": (int,),
    "leases": (dict, type(None)), "clone": (dict, type(None)),
}
class Record:
    """worker.json. Field names and meanings are documented in docs/output.md ("worker.json").

    A plain class rather than a dataclass, like everything list and show touch (see
    repo.Repo); FIELDS, in worker.json's order, is the field list a dataclass would keep.
    """

    FIELDS = tuple(_FIELD_TYPES)

    def __init__(
        self, id: str, state: str, branch: str, base: dict[str, Any], worktree: str, *,
        agent: str | None = None, model: str | None = None,
        launcher: dict[str, Any] | None = None, created_at: str | None = None,
        updated_at: str | None = None, exit_code: int | None = None,
        review: dict[str, Any] | None = None, task: dict[str, Any] | None = None,
        spawn_steps: list[str] | None = None, host: str | None = None,
        owner: dict[str, Any] | None = None, merge: dict[str, Any] | None = None,
        schema_version: int = SCHEMA_VERSION, leases: dict[str, Any] | None = None,
        clone: dict[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.state = state  # one of State's; as read, a newer version may know more states
        self.branch = branch
        self.base = base  # name, oid, fetched, fetch_error
        self.worktree = worktree
        self.agent = agent
        self.model = model
        self.launcher: dict[str, Any] = {"kind": None} if launcher is None else launcher
        self.created_at = now() if created_at is None else created_at
        self.updated_at = self.created_at if updated_at is None else updated_at
        self.exit_code = exit_code
        self.review: dict[str, Any] = {"status": None, "at": None} if review is None else review
        self.task: dict[str, Any] = {"title": None, "source": "cli"} if task is None else task
        self.spawn_steps: list[str] = [] if spawn_steps is None else spawn_steps
        self.host = processes.hostname() if host is None else host
        # The process changing this worker right now (spawn, rm): {action, pid, start,
        # host}. If it dies half-way, recovery finishes its work (see recovery.py).
        self.owner = owner
        self.merge = merge  # {into, commit, tip, kind, at} once merged
        self.schema_version = schema_version
        self.leases = leases  # {ports, slot} leased to it (see leases.py); null before
        # The clone that owns it, with worker.remote: {id, name, user} (see team.py); null
        # for a clone that shares no registry. Only its owner changes it.
        self.clone = clone

    def __repr__(self) -> str:
        return f"Record({self.id!r}, state={self.state!r})"

    def as_dict(self) -> dict[str, Any]:
        """The fields as a new dict (nested values shared: copy before changing them)."""
        return {name: getattr(self, name) for name in self.FIELDS}

    def to_json(self) -> bytes:
        # hooks/reference-transaction reads "id", "branch" and "worktree" from this exact
        # layout (indent 2, one key per line) with sed: keep it, or change both.
        # compact_json: json.dumps(indent=2, ensure_ascii=False)'s very text, without
        # importing json (and re with it: ~3 ms of every rm before its first write).
        return (compact_json.dumps(self.as_dict(), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Record:
        try:
            raw = compact_json.loads(data)
        except RecursionError:  # "[[[[…": garbage, like any other unparsable record
            raise ValueError("JSON nested too deeply") from None
        if not isinstance(raw, dict):
            raise ValueError("worker.json is not an object")
        # One pass over what is there (list parses every record: ~8 µs a record less than
        # asking each field in turn).
        known = {k: v for k, v in raw.items() if k in _FIELD_TYPES}
        for key, value in known.items():
            types = _FIELD_TYPES[key]
            if not isinstance(value, types):
                raise ValueError(f"{key} is {_json_type(value)}, expected "
                                 + " or ".join(_json_type(t()) for t in types))
        missing = [k for k in _REQUIRED if k not in known]
        if missing:
            raise ValueError("missing " + ", ".join(missing))
        base = known["base"]
        if not isinstance(base.get("name"), str) or not isinstance(base.get("oid"), str):
            raise ValueError("base needs a name and an oid (strings)")
        return cls(**known)


def _json_type(value: object) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean",
            dict: "an object", list: "an array", type(None): "null"}.get(type(value), "?")


class Corrupt:
    """A registry ref that does not hold a readable record."""

    def __init__(self, worker_id: str, oid: str, reason: str) -> None:
        self.id = worker_id
        self.oid = oid
        self.reason = reason
