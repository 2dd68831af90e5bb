"""Compare a record with reality: the branch, the worktree, the agent's process.

`list` and `fsck` never trust one source blindly. A probe that fails says "unknown",
never "gone". Reads go through one `git for-each-ref` per command (see Repo.ref_table),
so listing many workers costs no more processes than listing one.
"""

from __future__ import annotations

import os

from git_worker import processes, refnames, registry, worker_processes, worktrees
from git_worker.errors import WorkerError
from git_worker.registry import Record
from git_worker.repo import Repo


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
        self._processes: list[processes.Stat] | None = None

    PREFIXES = (refnames.HEADS, refnames.REMOTES, refnames.TAGS)

    @classmethod
    def read(cls, repo: Repo, *more: str) -> Reality:
        """Branches, remote-tracking branches and tags, and any ``more`` prefixes."""
        return cls(repo, repo.ref_table(*cls.PREFIXES, *more))

    def ref(self, name: str) -> str | None:
        return self.refs.get(name) or None

    def processes(self) -> list[processes.Stat]:
        """Every process on this machine, scanned once per command and only if asked."""
        if self._processes is None:
            self._processes = processes.scan()
        return self._processes

    def behind(self, tip: str, since: str) -> int | None:
        key = (tip, since)
        if key not in self._behind:
            try:
                self._behind[key] = self.repo.count_commits(tip, since)
            except WorkerError:
                self._behind[key] = None  # e.g. the base OID was garbage-collected
        return self._behind[key]


def exit_status(repo: Repo, worker_id: str) -> int | None:
    """The agent's exit code from the runtime file the runner writes first: list shows
    `exited`/`failed` from it even before the registry records the exit."""
    return worker_processes.exit_code(registry.runtime_dir(repo, worker_id))


def worker(repo: Repo, record: Record) -> worker_processes.Worker:
    return worker_processes.Worker(record.id, registry.runtime_dir(repo, record.id),
                                   record.launcher, record.host)


def _observe_live(reality: Reality, record: Record, seen: Observed) -> None:
    """A record that says running, no exit code: which of its processes still live?

    The runner or the agent (pid and start time, no /proc scan) → running, whatever
    happened to the other. Neither → any process they started, still in their session
    (one /proc scan per command, shared) → running. None at all → vanished.
    """
    problems = seen.problems
    who = worker(reality.repo, record)
    session = record.launcher.get("session")
    alive = worker_processes.recorded_alive(who)
    if alive is None:
        problems.append("agent process: unknown")
        return
    if alive:
        if session and _session_gone(record.launcher):
            problems.append(f"tmux session {session} is gone, but the agent still runs")
        elif not worker_processes.runner_alive(who):
            problems.append("its runner is gone (killed?), but the agent still runs; its "
                            "exit code will not be known")
        return
    left = worker_processes.find(who, everywhere=False, table=reality.processes())
    if left:
        problems.append(f"its agent has ended without recording an exit code, but "
                        f"{worker_processes.describe(left)} it started still run; "
                        f"git worker stop {record.id} ends them")
        return
    # Never shown as running: nothing of it is left, and nothing recorded an exit.
    seen.state = "vanished"
    where = f"its tmux session {session}" if session else "its process"
    problems.append(f"{where} ended without recording an exit code (killed, or the "
                    "machine restarted); the worktree and branch are intact")


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
            _observe_live(reality, record, seen)
    elif record.state == "stopped" and seen.exit_code is None:
        seen.exit_code = exit_status(repo, record.id)

    if reality.ref(record.branch) is None:
        problems.append(f"branch {refnames.short(record.branch)} is missing")
    if record.state != "spawning":
        problems.extend(_worktree_problems(record))

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
