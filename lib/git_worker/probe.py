"""Compare a record with reality: the branch, the worktree, the agent's process.

`list` and `fsck` never trust one source blindly. A probe that fails says "unknown",
never "gone". Reads go through one `git for-each-ref` per command (see Repo.ref_table),
so listing many workers costs no more processes than listing one. `collect` puts it
together for every worker: the rows `list --json` prints and `watch` shows.
"""

from __future__ import annotations

from git_worker import processes, refnames, worker_processes, worktrees
from git_worker.errors import WorkerError
from git_worker.registry.record import RUNNING, Record, State
from git_worker.registry.runtime import RuntimeDir
from git_worker.repo import Repo

# typing only for annotations: importing leases costs list its imports when no worker has one.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

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
        from git_worker.base_branch import landing_branch

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
    return worker_processes.exit_code(RuntimeDir.of(repo, worker_id).path)


def worker(repo: Repo, record: Record) -> worker_processes.Worker:
    return worker_processes.Worker(record.id, RuntimeDir.of(repo, record.id).path,
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
    seen.state = State.VANISHED
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
    elif record.state in RUNNING:
        code = exit_status(repo, record.id)
        if code is not None:
            seen.state, seen.exit_code = (State.EXITED if code == 0 else State.FAILED), code
        else:
            _observe_live(reality, record, seen)
    elif record.state == State.STOPPED and seen.exit_code is None:
        seen.exit_code = exit_status(repo, record.id)

    if reality.ref(record.branch) is None:
        problems.append(f"branch {refnames.short(record.branch)} is missing")
    if record.state != State.SPAWNING:
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
        worktrees.config_problem(repo, record.worktree, RuntimeDir.of(repo, record.id).path,
                                 admin_dirs)
    return [found] if found else []


# --- what `list` shows at a glance: derived fields, read-only ------------------------------
# Kept apart from observe(), which derives the live state: these only read what is there.

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
    path = RuntimeDir.of(repo, worker_id).waiting
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
                                          RuntimeDir.of(repo, record.id).path))
    except WorkerError:
        return None


def at_a_glance(reality: Reality, record: Record, state: str, ahead: int | None, *,
                check_uncommitted: bool) -> dict[str, object]:
    """The fields `list --json` and `show --json` add for what a user acts on."""
    return {
        "ahead": ahead,
        "uncommitted": uncommitted(reality.repo, record) if check_uncommitted else None,
        "verdict": verdict(record, reality.ref(record.branch)),
        "message": waiting_message(reality.repo, record.id) if state == State.WAITING else None,
    }
