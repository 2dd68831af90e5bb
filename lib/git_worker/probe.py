"""Compare a record with reality: the branch, the worktree, the agent's process.

`list` and `fsck` never trust one source blindly. A probe that fails says "unknown",
never "gone". Reads go through one `git for-each-ref` per command (see Repo.ref_table),
so listing many workers costs no more processes than listing one.
"""

from __future__ import annotations

import os

from git_worker import processes, refnames, registry, worktrees
from git_worker.errors import WorkerError
from git_worker.registry import Record
from git_worker.repo import Repo

# typing only for annotations: importing leases costs list its imports when no worker has one.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_worker.leases import Listeners


class Observed:
    """What one probe found (a plain class: see Repo for why list has no dataclasses)."""

    def __init__(self, state: str, exit_code: int | None) -> None:
        self.state = state  # the live state: the record's, corrected by the runtime files
        self.exit_code = exit_code
        self.problems: list[str] = []
        self.behind: int | None = None  # commits the base gained since the worker started


class Reality:
    """What a command reads once and every probe of that command shares."""

    def __init__(self, repo: Repo, refs: dict[str, str]) -> None:
        self.repo = repo
        self.refs = refs
        self._behind: dict[tuple[str, str], int | None] = {}
        self._listeners: Listeners | None = None

    @property
    def listeners(self) -> Listeners:
        """This machine's TCP listeners, read on first use (see leases.Listeners)."""
        if self._listeners is None:
            from git_worker.leases import Listeners

            self._listeners = Listeners()
        return self._listeners

    PREFIXES = (refnames.HEADS, refnames.REMOTES, refnames.TAGS)

    @classmethod
    def read(cls, repo: Repo, *more: str) -> Reality:
        """Branches, remote-tracking branches and tags, and any ``more`` prefixes."""
        return cls(repo, repo.ref_table(*cls.PREFIXES, *more))

    def ref(self, name: str) -> str | None:
        return self.refs.get(name) or None

    def behind(self, tip: str, since: str) -> int | None:
        key = (tip, since)
        if key not in self._behind:
            try:
                self._behind[key] = self.repo.count_commits(tip, since)
            except WorkerError:
                self._behind[key] = None  # e.g. the base OID was garbage-collected
        return self._behind[key]


def exit_status(repo: Repo, worker_id: str) -> int | None:
    path = os.path.join(registry.runtime_dir(repo, worker_id), "exit")
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def observe(reality: Reality, record: Record) -> Observed:
    repo = reality.repo
    seen = Observed(record.state, record.exit_code)
    problems = seen.problems

    if record.owner is not None:
        if processes.alive(record.owner) is False:
            action = record.owner.get("action", "spawn")
            problems.append(f"{action} was interrupted (its process is gone); "
                            "run: git worker fsck --repair")
    elif record.state in ("running", "waiting"):
        code = exit_status(repo, record.id)
        if code is not None:
            seen.state, seen.exit_code = ("exited" if code == 0 else "failed"), code
        else:
            alive = processes.alive(record.launcher | {"host": record.host})
            session = record.launcher.get("session")
            if alive is False:
                # Never shown as running: the process that would record an exit is gone.
                seen.state = "vanished"
                where = f"its tmux session {session}" if session else "its process"
                problems.append(f"{where} ended without recording an exit code "
                                "(killed, or the machine restarted); the worktree and branch "
                                "are intact")
            elif alive is None:
                problems.append("agent process: unknown")
            elif session and _session_gone(record.launcher):
                problems.append(f"tmux session {session} is gone, but the agent still runs")
    elif record.state == "stopped" and seen.exit_code is None:
        seen.exit_code = exit_status(repo, record.id)

    if reality.ref(record.branch) is None:
        problems.append(f"branch {refnames.short(record.branch)} is missing")
    if record.state != "spawning":
        problems.extend(_worktree_problems(record))

    if (record.leases or {}).get("ports") and record.host == processes.hostname():
        problems.extend(reality.listeners.problems(repo.common_dir, record))

    base_tip = reality.ref(record.base.get("ref") or "")
    if base_tip:
        seen.behind = reality.behind(base_tip, record.base["oid"])
    return seen


def _session_gone(launcher: dict[str, object]) -> bool:
    from git_worker import launchers

    socket = launcher.get("socket")
    return launchers.session_alive(socket if isinstance(socket, str) else None,
                                   str(launcher["session"])) is False


def _worktree_problems(record: Record) -> list[str]:
    path = record.worktree
    try:
        if not os.path.isdir(path):
            return [f"worktree {path} is missing"]
        admin = worktrees.admin_dir_of(path)
        if admin is None or not os.path.isdir(admin):
            return [f"worktree {path} is not a registered git worktree"]
        head = worktrees.head_branch(admin)
        if head != record.branch:
            where = refnames.short(head) if head else "a detached HEAD"
            return [f"worktree is on {where}, not {refnames.short(record.branch)}"]
    except OSError as e:
        return [f"worktree: unknown ({e.strerror})"]
    return []
