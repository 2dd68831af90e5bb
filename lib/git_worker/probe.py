"""Compare a record with reality: the branch, the worktree, the agent's process.

`list` and `fsck` never trust one source blindly. A probe that fails says "unknown",
never "gone". Reads go through one `git for-each-ref` per command (see Repo.ref_table),
so listing many workers costs no more processes than listing one. `collect` puts it
together for every worker: the rows `list --json` prints and `watch` shows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from git_worker import processes, refnames, registry, worker_processes, worktrees
from git_worker.errors import WorkerError
from git_worker.registry import Record
from git_worker.repo import Repo

# typing only for annotations: importing leases costs list its imports when no worker has one.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from git_worker.leases import Listeners


class Observed:
    """What one probe found (a plain class: see Repo for why list has no dataclasses)."""

    def __init__(self, state: str, exit_code: int | None) -> None:
        self.state = state  # the live state: the record's, corrected by the runtime files
        self.exit_code = exit_code
        self.problems: list[str] = []
        self.behind: int | None = None  # commits its landing target gained since its base


class Reality:
    """What a command reads once and every probe of that command shares."""

    def __init__(self, repo: Repo, refs: dict[str, str]) -> None:
        self.repo = repo
        self.refs = refs
        self._behind: dict[tuple[str, str], int | None] = {}
        self._upstreams: dict[str, str] | None = None
        self._listeners: Listeners | None = None
        self.realpath = worktrees.RealPaths()  # the worktrees' parents, resolved once
        # every admin dir's gitdir, read once: a repair that prunes admin dirs (fsck) prunes
        # only those of missing worktrees, which nothing looks up afterwards
        self.admin_dirs = worktrees.AdminDirs(repo.common_dir)
        self._processes: list[processes.Stat] | None = None
        self._tmux_sessions: dict[str | None, set[str] | None] = {}

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

    def landing_ref(self, base_ref: str) -> str:
        """Where work from ``base_ref`` lands: a remote-tracking base lands in its local
        branch (when there is one); any other base is its own target."""
        if not base_ref.startswith(refnames.REMOTES):
            return base_ref
        from git_worker.base import landing_branch

        if self._upstreams is None:  # one for-each-ref, only when a base is remote
            self._upstreams = self.repo.upstreams()
        local = landing_branch(self.repo, base_ref, self._upstreams)
        return local if self.ref(local) else base_ref

    def processes(self) -> list[processes.Stat]:
        """Every process on this machine, scanned once per command and only if asked."""
        if self._processes is None:
            self._processes = processes.scan()
        return self._processes

    def tmux_sessions(self, socket: str | None) -> set[str] | None:
        """The session names of the tmux server at ``socket`` (None: the default one), asked
        once per command and server, not once per worker; None when tmux cannot tell."""
        if socket not in self._tmux_sessions:
            self._tmux_sessions[socket] = _tmux_sessions(socket)
        return self._tmux_sessions[socket]

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
        if session and _session_gone(reality, record.launcher):
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
        problems.extend(_worktree_problems(repo, record, reality.realpath, reality.admin_dirs))

    if (record.leases or {}).get("ports") and record.host == processes.hostname():
        problems.extend(reality.listeners.problems(repo.common_dir, record))

    # Behind what the work will land in (local main, with today's merges), not behind
    # origin/main: that is what a merge or a sync would bring in.
    base_tip = reality.ref(reality.landing_ref(record.base.get("ref") or ""))
    if base_tip:
        seen.behind = reality.behind(base_tip, record.base["oid"])
    return seen


def _session_gone(reality: Reality, launcher: dict[str, object]) -> bool:
    socket = launcher.get("socket")
    sessions = reality.tmux_sessions(socket if isinstance(socket, str) else None)
    return sessions is not None and str(launcher["session"]) not in sessions


def _tmux_sessions(socket: str | None) -> set[str] | None:
    """As launchers.session_alive tells one session: all of them, or None when unknown."""
    import subprocess

    from git_worker import launchers

    try:
        proc = launchers.tmux(socket, "list-sessions", "-F", "#{session_name}", timeout=5)
    except (WorkerError, subprocess.TimeoutExpired):
        return None
    if proc.returncode == 0:
        return set(proc.stdout.splitlines())
    if "no server running" in proc.stderr or "error connecting" in proc.stderr:
        return set()
    return None


def _worktree_problems(repo: Repo, record: Record,
                       realpath: worktrees.RealPaths | None = None,
                       admin_dirs: worktrees.AdminDirs | None = None) -> list[str]:
    found = worktrees.problem(repo, record.worktree, record.branch, realpath) or \
        worktrees.config_problem(repo, record.worktree, registry.runtime_dir(repo, record.id),
                                 admin_dirs)
    return [found] if found else []


# --- what `list` shows at a glance: derived fields, read-only ------------------------------
# Kept apart from observe(), which derives the live state: these only read what is there.

WAITING_FILE = "waiting"  # runtime file: the agent's message while it waits (lifecycle.py)
# review.PASSED, BLOCKED, ERROR: spelled here because importing review.py (dataclasses,
# threading, config) would cost every list ~15 ms.
VERDICTS = ("passed", "blocked", "error")
STALE = "stale"  # passed, but for an older tip than the branch has now


def ahead_counts(reality: Reality, records: Sequence[Record]) -> dict[str, int | None]:
    """Commits on each worker's branch that its base lacks (neither the base's tip nor the
    commit the worker started from has them); None when that cannot be told.

    One `git rev-list --parents` per base (not one rev-list per worker): the commits of
    every branch not in the base's tip, then per worker those reachable from its tip and
    not from the commit it started from."""
    counts: dict[str, int | None] = {}
    groups: dict[str, list[Record]] = {}
    for r in records:
        tip = reality.ref(r.branch)
        if tip is None:
            counts[r.id] = None
        elif tip == r.base["oid"]:
            counts[r.id] = 0  # never moved: nothing to read
        else:
            base_tip = reality.ref(r.base.get("ref") or "") or r.base["oid"]
            groups.setdefault(base_tip, []).append(r)
    for base_tip, members in groups.items():
        starts = [str(reality.ref(r.branch)) for r in members] + [r.base["oid"] for r in members]
        try:
            graph = reality.repo.commit_graph(starts, base_tip)
        except WorkerError:  # an object is missing (say, a garbage-collected base commit)
            for r in members:
                counts[r.id] = _count_alone(reality, r, base_tip)
            continue
        for r in members:
            own = _reachable(graph, str(reality.ref(r.branch))) - _reachable(graph, r.base["oid"])
            counts[r.id] = len(own)
    return counts


def _count_alone(reality: Reality, record: Record, base_tip: str) -> int | None:
    try:
        return reality.repo.count_commits(str(reality.ref(record.branch)), base_tip,
                                          record.base["oid"])
    except WorkerError:
        return None


def _reachable(graph: dict[str, list[str]], start: str) -> set[str]:
    """The commits of ``graph`` reachable from ``start`` (those outside it are the base's)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        oid = todo.pop()
        if oid in graph and oid not in seen:
            seen.add(oid)
            todo.extend(graph[oid])
    return seen


def verdict(record: Record, tip: str | None) -> str | None:
    """The last review's verdict: passed, blocked, error, or stale (passed for an older
    tip than the branch has now); None when never reviewed."""
    rv = record.review or {}
    status = rv.get("status")
    if status not in VERDICTS:
        return None
    if status == "passed" and rv.get("commit") and tip and rv["commit"] != tip:
        return STALE
    return str(status)


def waiting_message(repo: Repo, worker_id: str) -> str | None:
    """What the agent said when it began to wait (its hook's message); None if nothing."""
    path = os.path.join(registry.runtime_dir(repo, worker_id), WAITING_FILE)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(4096)
    except OSError:
        return None
    # The agent's words, shown on the user's terminal: never its control sequences.
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text[:300] or None


def uncommitted(repo: Repo, record: Record) -> bool | None:
    """Whether the worktree has modified, staged or untracked files (a `git status`: exact,
    but a process per worker, so `show` asks and `list` does not); None when unknown."""
    if _worktree_problems(repo, record):
        return None  # missing, or not this worker's worktree: its status is not the worker's
    try:
        return bool(worktrees.dirty_paths(repo, record.worktree,
                                          registry.runtime_dir(repo, record.id)))
    except WorkerError:
        return None


def at_a_glance(reality: Reality, record: Record, state: str, ahead: int | None, *,
                check_uncommitted: bool) -> dict[str, object]:
    """The fields `list --json` and `show --json` add for what a user acts on."""
    return {
        "ahead": ahead,
        "uncommitted": uncommitted(reality.repo, record) if check_uncommitted else None,
        "verdict": verdict(record, reality.ref(record.branch)),
        "message": waiting_message(reality.repo, record.id) if state == "waiting" else None,
    }


# --- every worker at once: what `list --json` prints ------------------------------------


def collect(repo: Repo, view: list[Any] | None = None) -> list[dict[str, Any]]:
    """The records plus derived fields: what `list --json` prints. With worker.remote, the
    other hosts' records follow, as last fetched (``view``, a one-item list, gets the
    team's view)."""
    rows: list[dict[str, Any]] = []
    queued: list[Record] = []
    # One for-each-ref for all three: branches, our records, the team's records.
    reality = Reality.read(repo, refnames.REGISTRY, refnames.TEAM)
    team_view = None
    if not any(r.startswith(refnames.TEAM) for r in reality.refs):
        found_all = list(registry.all_entries(repo, reality.refs))
        # worker.remote is read (one git config) only when a record of ours carries its
        # clone (spawned with worker.remote) and nothing was fetched yet: is it published?
        if any(isinstance(f, registry.Entry) and f.record.clone for f in found_all):
            from git_worker import team

            team_view = team.view(repo, reality.refs, team.remote_of(repo), [])
    else:
        from git_worker import team

        settings = team.remote_of(repo)
        theirs = refnames.team(settings.get("worker.remote", ""))
        ours_table = {r: o for r, o in reality.refs.items() if r.startswith(refnames.REGISTRY)}
        seen_table = {r: o for r, o in reality.refs.items() if r.startswith(theirs)}
        # this clone's records and the team's, in one cat-file
        found_all, fetched = registry.read_tables(repo, [(ours_table, refnames.REGISTRY),
                                                      (seen_table, theirs)])
        team_view = team.view(repo, reality.refs, settings, fetched)
    if view is not None:
        view.append(team_view)
    ahead = ahead_counts(reality, [f.record for f in found_all
                                   if not isinstance(f, registry.Corrupt)])
    for found in found_all:
        if isinstance(found, registry.Corrupt):
            rows.append({"id": found.id, "state": "corrupt", "registry_oid": found.oid,
                         "problems": [f"unreadable record: {found.reason}; run: git worker fsck"]})
            continue
        seen = observe(reality, found.record)
        row = found.record.as_dict()
        row.update(state=seen.state, exit_code=seen.exit_code, behind=seen.behind,
                   problems=seen.problems)
        # `uncommitted` is not checked here: only `git status` tells it exactly, and that is
        # a process per worker (`show` runs it); see docs/output.md, "git worker list --json".
        row.update(at_a_glance(reality, found.record, seen.state, ahead[found.record.id],
                               check_uncommitted=False))
        if team_view is not None:
            _team_fields(row, team_view)
        rows.append(row)
        if found.record.state == "queued":
            queued.append(found.record)
    if queued:
        _stalled_queue(repo, rows, queued)
    if team_view is not None:
        for other in sorted(team_view.others, key=lambda e: e.record.id):
            row = other.record.as_dict()
            row.update(problems=[], ahead=None, verdict=None, behind=None,
                       team={"host": _host(other.record.clone, other.record.host),
                             "remote": team_view.remote, "read_only": True})
            rows.append(row)
    return rows


def _host(clone: dict[str, Any] | None, machine: str) -> str:
    return str((clone or {}).get("name") or machine)


def _team_fields(row: dict[str, Any], view: Any) -> None:
    row["team"] = {"host": view.name, "remote": view.remote, "read_only": False}
    worker_id = row["id"]
    if worker_id in view.conflicts:
        theirs = view.conflicts[worker_id]
        from git_worker import team

        row["problems"].append(
            f"conflict: {view.remote} holds another '{worker_id}', by {team.holder(theirs)}; "
            f"both are kept (theirs: {refnames.team(view.remote, worker_id)}); this one is "
            "not published")
    elif worker_id in view.unpublished:
        row["problems"].append(f"not published to {view.remote} yet; run: git worker publish")


def _stalled_queue(repo: Repo, rows: list[dict[str, Any]],
                   queued: list[Record]) -> None:
    """A queue with free slots and nothing starting it: a problem of its oldest worker."""
    from git_worker import lifecycle  # only with queued workers: it costs list ~10 ms

    if not lifecycle.queue_busy(repo):
        running = sum(r["state"] in lifecycle.RUNNING for r in rows)
        problem = lifecycle.stalled(queued, running, lifecycle.max_concurrent(repo))
        if problem:
            oldest = min(queued, key=lifecycle.queue_order).id
            next(r for r in rows if r["id"] == oldest)["problems"].append(problem)
