"""The spawn transaction: registry claim, branch, worktree, files, agent — all or nothing.

Each step pushes its own undo; any failure runs them in reverse, so a failed spawn leaves
the repository exactly as it found it. A spawner killed mid-way leaves a `spawning` record
whose owner process is gone: `recovery.abandon_spawn` (run by `fsck --repair` and by the next
spawn of that id) finishes the rollback.
"""

from __future__ import annotations

import os
import time

from git_worker import (
    failpoints,
    leases,
    locks,
    processes,
    prompt,
    recovery,
    refnames,
    team,
    tracker,
    worktrees,
)
from git_worker.base_branch import Base
from git_worker.config import Config, required_default
from git_worker.errors import WorkerError
from git_worker.git import clean_env
from git_worker.registry import store
from git_worker.registry.record import RUNNING, Record, State
from git_worker.registry.runtime import (
    DIR_MODE,
    LAST_RUN,
    PROMPT,
    RuntimeDir,
    ensure_runtime_root,
    make_runtime_dir,
    not_a_directory,
    private,
    write_atomically,
)
from git_worker.repo import Repo
from git_worker.undo import UndoLog, transaction

# For annotations only: spawn --no-launch never imports the launchers, one id's spawn
# never imports threading, and typing would cost every spawn ~3 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator
    from typing import Any

    from git_worker import launchers

_SETUP_HINT = "fix the command, or remove it: git config --unset-all worker.setup"
STEPS = ("claim", "branch", "worktree", "files", "setup", "launch")

# Plain classes, not dataclasses: `import dataclasses` (it imports inspect) and building
# the classes cost spawn ~15 ms before its checkout could start (measured).


class Task:
    def __init__(self, id: str, title: str | None = None, description: str = "",
                 source: str = "cli", issue: tracker.Issue | None = None,
                 extra: str = "") -> None:
        self.id = id
        self.title = title
        self.description = description
        self.source = source  # "bd" when the text came from the tracker
        self.issue = issue  # the bd issue, claimed when the worker starts
        self.extra = extra  # -d TEXT given alongside a bd issue: added to its description


class Plan:
    """What every worker of one `spawn` command shares."""

    def __init__(self, *, base: Base, branch_prefix: str, worktree_root: str, agent: str,
                 model: str | None, launch: bool, tracker_timeout: float,
                 template: prompt.Template | None = None, launcher: str = "detached",
                 max_concurrent: int | None = None, queue: bool = False,
                 review: bool | None = None, team_settings: team.Settings | None = None,
                 parallel_checkout: bool = True) -> None:
        self.base = base
        self.branch_prefix = branch_prefix
        self.worktree_root = worktree_root
        self.agent = agent
        self.model = model
        self.launch = launch
        self.tracker_timeout = tracker_timeout  # worker.trackerTimeout
        self.template = template or prompt.builtin()
        self.launcher = launcher
        self.max_concurrent = max_concurrent
        self.queue = queue  # over max_concurrent: queue instead of failing
        self.review = review  # spawn --review/--no-review; None: worker.review decides
        self.team_settings = team_settings  # worker.remote: claims and changes published there
        # ids spawned while the team's remote could not be reached, and why (for the warning)
        self.offline: dict[str, team.Unreachable] = {}
        # Set on ^C while spawns run in threads (spawn_each, which makes it: one id's spawn
        # imports no threading): each stops and rolls back.
        self.interrupted: threading.Event | None = None
        # True: one checkout process per core (the user did not set checkout.workers);
        # False while spawns run in threads: each worktree's checkout is then git's own
        # choice (the threads are the parallelism; see git.start_check_out_head).
        self.parallel_checkout = parallel_checkout


def worktree_root(repo: Repo, config: Config) -> str:
    """worker.worktreeDir, absolute; refused when it points into the git directory."""
    setting = config.string("worker.worktreeDir")
    name = os.path.basename(repo.main_worktree.rstrip("/")) or "repo"
    if name == ".git":  # bare repository named like its .git
        name = os.path.basename(os.path.dirname(repo.main_worktree)) or "repo"
    # SETTINGS' default names the repository as <repo>: ../<repo>.workers.
    template = required_default("worker.worktreeDir")
    raw = setting or template.replace("<repo>", name.removesuffix(".git"))
    root = os.path.normpath(os.path.join(repo.main_worktree, os.path.expanduser(raw)))
    common = os.path.realpath(repo.common_dir)
    real = os.path.realpath(root)
    if real == common or real.startswith(common + os.sep):
        raise WorkerError(
            f"worker.worktreeDir ({raw}) points into the git directory {repo.common_dir}",
            hint="choose a directory outside .git: git config worker.worktreeDir ../my.workers",
        )
    existing = real
    while not os.path.exists(existing):  # the nearest part of it that exists already
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise WorkerError(
            f"worker.worktreeDir ({raw}) cannot hold worktrees: {existing} is a file",
            hint="point it at a directory: git config worker.worktreeDir ../my.workers",
        )
    return root


def worktree_path(root: str, worker_id: str) -> str:
    path = os.path.normpath(os.path.join(root, worker_id))
    if os.path.dirname(path) != root:  # ids are validated; this guards the invariant itself
        raise WorkerError(f"worktree path for '{worker_id}' would leave {root}")
    return path


def spawn_each(repo: Repo, config: Config, tasks: list[Task], plan: Plan,
               on_interrupt: Callable[[int], None] | None = None,
               ) -> Iterator[tuple[Task, Record | WorkerError]]:
    """spawn() every task, each its own transaction; each task with its outcome (the
    record, or why it failed), in the order of ``tasks``.

    Several tasks are spawned at once, by at most one thread per core: one failing rolls
    back only itself. ^C reaches the main thread alone, waiting here: it tells every
    unfinished spawn to stop after the step in progress and roll back (then calls
    ``on_interrupt`` with how many), waits for them, yields the outcomes of those that had
    finished, and raises KeyboardInterrupt again.
    One by one, though, with worker.remote (each spawn publishes to the shared remote) and
    with worker.maxConcurrent (the ids given first take the free slots and the first places
    in the queue, in the order given).
    """
    threads = min(len(tasks), os.cpu_count() or 1)
    ordered = plan.launch and plan.max_concurrent is not None
    if threads < 2 or plan.team_settings is not None or ordered:
        for task in tasks:
            try:
                yield task, spawn(repo, config, task, plan)
            except WorkerError as e:
                yield task, e
        return
    import threading
    from concurrent.futures import ThreadPoolExecutor, wait

    def attempt(task: Task) -> Record | WorkerError:
        try:
            return spawn(repo, config, task, plan)
        except WorkerError as e:
            return e

    # Their common parent, made here: a spawn rolled back removes what it made itself, and
    # a parent made by one spawn and used by another would be left behind by both.
    made_parent = worktrees.make_parents(plan.worktree_root)
    plan.parallel_checkout = False
    interrupted = plan.interrupted = threading.Event()
    try:
        with ThreadPoolExecutor(threads, thread_name_prefix="spawn") as pool:
            futures = [pool.submit(attempt, task) for task in tasks]
            done = 0
            try:
                for future in futures:
                    outcome = future.result()
                    done += 1
                    yield tasks[done - 1], outcome
            except BaseException:  # ^C, or a bug in one spawn: the others stop as well
                interrupted.set()
                for future in futures:
                    future.cancel()  # not begun: never will
                if on_interrupt is not None:
                    on_interrupt(sum(not f.done() for f in futures))
                wait(futures)
                for task, future in zip(tasks[done:], futures[done:], strict=True):
                    if not future.cancelled() and future.exception() is None:
                        yield task, future.result()
                raise
    finally:
        worktrees.remove_made_parents(made_parent, plan.worktree_root)


def spawn(repo: Repo, config: Config, task: Task, plan: Plan) -> Record:
    """Create one worker; on any failure, undo exactly what this call created, then raise."""
    # team.deferred: the record changes a few times here; it is published once, at the end.
    with team.deferred(), transaction(plan.interrupted) as undo:
        record = _spawn(repo, config, task, plan, undo)
    if plan.team_settings is not None and task.id not in plan.offline:
        try:
            team.publish(repo, plan.team_settings, [task.id])
        except team.Unreachable as e:
            plan.offline[task.id] = e  # claimed there; its later states are pending
    return record


def _spawn(repo: Repo, config: Config, task: Task, plan: Plan, undo: UndoLog) -> Record:
    branch_ref = refnames.branch(plan.branch_prefix, task.id)
    path = worktree_path(plan.worktree_root, task.id)
    record = Record(
        id=task.id,
        state=State.SPAWNING,
        branch=branch_ref,
        base=plan.base.as_json(),
        worktree=path,
        agent=plan.agent if plan.launch else None,
        model=plan.model,
        task={"title": task.title, "source": task.source},
        review={"status": None, "at": None, "auto": plan.review},
        owner=processes.identity("spawn"),
        clone=plan.team_settings.identity() if plan.team_settings else None,
    )

    # 1. claim refs/workers/<id>: from here on, this id is ours alone — and, with a team
    # remote, claimed there too before anything else is made (another host may hold it).
    # 2. the branch, created only if it doesn't exist (a branch is never reused silently):
    # in the claim's transaction (one `git update-ref`, all or nothing), unless the team's
    # remote must see the claim first.
    alone = plan.team_settings is None
    entry = _claim(repo, record, plan.base.oid if alone else None)
    if plan.team_settings is not None:
        settings = plan.team_settings
        # Runs after the local claim's undo: with the record gone here, publishing takes
        # the claim off the remote (pending if the remote cannot be reached then).
        undo.push("team claim", lambda: team.publish(repo, settings, [task.id]))
    undo.push("claim", lambda: _unclaim(repo, task.id))
    if alone:
        undo.push("branch", lambda: recovery.delete_new_branch(repo, branch_ref,
                                                                plan.base.oid, path))
    if plan.team_settings is not None:
        unreachable = team.claim(repo, plan.team_settings, entry)
        if unreachable is not None:
            plan.offline[task.id] = unreachable
    runtime = make_runtime_dir(repo, task.id)  # a removed namesake's files go
    undo.push("runtime dir", lambda: _rmtree(runtime))
    runner = _prepare_runner(repo, plan, task.id, path, runtime, undo)
    failpoints.hit("spawn.claim")
    if not alone:
        if not repo.create_ref(branch_ref, plan.base.oid, f"git-worker: spawn {task.id}"):
            raise _branch_exists(branch_ref)
        undo.push("branch", lambda: recovery.delete_new_branch(repo, branch_ref,
                                                                plan.base.oid, path))
    failpoints.hit("spawn.branch")

    # 3. the worktree: its files checked out by git while this process does what needs
    # neither them nor the worktree (a spawner killed meanwhile leaves what a kill during
    # the checkout always left: a claim, a branch and a worktree still `locked`).
    adding = worktrees.start_add(repo, path, branch_ref, plan.base.oid,
                                 parallel_checkout=plan.parallel_checkout)
    undo.push("worktree", adding.discard)
    # Its slot and ports, given back on undo. Kept in the record in memory and written with
    # spawn's last commit: the lease store names the worker (repository, id, created_at),
    # so a lease whose spawn dies before that commit is given back by recovery, or found
    # stale by the next lease once the record is gone (one commit less per spawn).
    entry.record.leases = leases.take(repo, config, entry.record, undo)
    write_atomically(RuntimeDir(runtime).prompt,
                     prompt.render(plan.template, _prompt_values(entry.record, task)))
    failpoints.hit("spawn.checkout")
    created = adding.finish()
    failpoints.hit("spawn.worktree")

    # 4. files: configured untracked files (the rendered prompt is written already).
    if config.values("worker.copy"):
        from git_worker import copies  # only then: it loads hashlib (~3 ms of CPU)

        copied = copies.Copied(path)
        undo.push("copies", lambda: copies.undo(copied))
        copies.copy(repo, config, path, copied)
        if copied.written:
            copies.save(repo, runtime, copied)
            if copies.exclude(repo, created.admin_dir, runtime):
                undo.push("worktreeConfig", lambda: copies.unexclude(repo, created.admin_dir))
    failpoints.hit("spawn.files")

    # 5. setup commands, from git config only (never from files in the repository).
    _run_setup(config, path, runtime, entry.record)
    failpoints.hit("spawn.setup")

    # 6. the agent: started now, or queued when worker.maxConcurrent agents already run.
    # The lock keeps concurrent spawns (and runners starting queued workers) from counting
    # the same free slot twice.
    launcher: dict[str, Any] = {"kind": None}
    queued = False
    if plan.launch:
        launcher = launch_or_queue(
            repo, config, Launch(task.id, path, plan.agent, plan.model, plan.launcher, branch_ref,
                                     leases.environment(config, entry.record)),
            limit=plan.max_concurrent, queue=plan.queue, undo=undo,
            claim=lambda: _claim_task(repo, task, plan, undo), prepared=runner)
        queued = "queued_at" in launcher
    failpoints.hit("spawn.launch")
    undo.stop_if_interrupted()  # the commit point is next: after it, the worker stays

    started = plan.launch and not queued
    state = State.RUNNING if started else State.QUEUED if queued else State.READY

    leased = entry.record.leases

    def finish(r: Record) -> None:
        r.launcher = dict(launcher)
        r.leases = leased
        r.spawn_steps = list(STEPS) if started else list(STEPS[:-1])
        r.owner = None
        r.task["claimed"] = bool(task.issue and (plan.launch or queued))
        r.task.pop("bd_before", None)  # the spawn is complete: nothing left to give back
        if r.state != State.SPAWNING:
            pass  # the agent has reported already (e.g. waiting): keep what it said
        elif started and r.exit_code is not None:  # a quick agent: it has exited already
            from git_worker import lifecycle

            r.state = lifecycle.exit_state(r.exit_code)
        else:
            r.state = state

    entry = store.update(repo, task.id, finish, f"spawn: {state}", current=entry)
    return entry.record


class Launch:
    """What starting one worker's agent needs (spawn's last step, and `start`)."""

    def __init__(self, worker_id: str, worktree: str, agent: str, model: str | None,
                 kind: str, branch: str, env: dict[str, str]) -> None:
        self.worker_id = worker_id
        self.worktree = worktree
        self.agent = agent
        self.model = model
        self.kind = kind  # launcher kind: tmux or detached
        self.branch = branch  # refs/heads/…, as the record says
        self.env = env  # the worker's leases (leases.environment)


def launch_or_queue(repo: Repo, config: Config, launch: Launch, *, limit: int | None,
                    queue: bool, undo: UndoLog, claim: Callable[[], None] | None = None,
                    prepared: launchers.Prepared | None = None) -> dict[str, Any]:
    """Start the agent now, or queue it when ``limit`` agents already run; returns what
    the record keeps in `launcher` (with `queued_at` when queued). Pushes its undo.
    ``prepared``: the agent's runner, started early (_prepare_runner), ended if the
    agent is queued.

    Under the queue lock, so that concurrent spawns and starts (and runners starting
    queued workers) never count the same free slot twice; workers queued earlier take the
    free slots first. ``claim`` runs once a slot (or a place in the queue) is certain.
    """
    # Imported here: spawn --no-launch needs neither (~5 ms of its start-up, measured).
    from git_worker import agents, launchers, lifecycle

    runtime = RuntimeDir.of(repo, launch.worker_id).path
    with locks.queue(repo):
        if limit is not None:  # without a limit no slot is waited for: no record is read
            lifecycle.start_queued_locked(repo, limit)
        running = lifecycle.over_limit(repo, limit, exclude=launch.worker_id)
        if running is not None and not queue:
            raise WorkerError(
                f"worker.maxConcurrent is {limit} and {len(running)} "
                f"worker(s) are running ({', '.join(running)})",
                hint="wait for one to finish, stop one (git worker stop ID), or pass "
                     "--queue to start this one when a slot frees up",
            )
        if claim is not None:
            claim()
        if running is not None:
            if prepared is not None:
                prepared.close()
            return lifecycle.queue(runtime, {
                "kind": launch.kind,
                "socket": launchers.caller_socket() if launch.kind == "tmux" else None})
        ctx = agents.Context(launch.worker_id, runtime, repo.common_dir, launch.worktree,
                             launch.branch, env=launch.env)
        inv = agents.invocation(config, launch.agent, model=launch.model, ctx=ctx)
        if inv.excluded:
            pattern = inv.excluded
            undo.push("exclude", lambda: agents.unexclude(repo.common_dir, pattern))
        launcher = launchers.launch(launch.kind, inv, worker_id=launch.worker_id,
                                    worktree=launch.worktree, runtime_dir=runtime,
                                    common_dir=repo.common_dir, prepared=prepared)
        undo.push("launch", lambda: recovery.stop_launched(runtime, launcher))
        return launcher


def _prepare_runner(repo: Repo, plan: Plan, worker_id: str, worktree: str, runtime: str,
                    undo: UndoLog) -> launchers.Prepared | None:
    """The agent's runner (in its tmux session, or detached), started now, before the
    branch and the checkout, so that its start-up — a second Python process — overlaps
    them; it waits, and starts the agent only when launch_or_queue hands it over."""
    if not plan.launch:
        return None
    from git_worker import launchers

    runner = launchers.prepare(plan.launcher, worker_id=worker_id, worktree=worktree,
                               runtime_dir=runtime, common_dir=repo.common_dir)
    undo.push("runner", runner.close)
    return runner


def _claim_task(repo: Repo, task: Task, plan: Plan, undo: UndoLog) -> None:
    """Claim the bd issue as the worker starts (or is queued to start), with its undo.

    A transaction step, not an afterthought: a claim bd refuses (someone else holds the
    issue) stops the spawn before an agent starts on a task that is not ours, and a launch
    that fails after the claim gives the issue back as it was.
    """
    issue = task.issue
    if issue is None:
        return
    if issue.status == "in_progress" and issue.assignee == tracker.actor():
        return  # already ours (e.g. a re-spawn): nothing to claim, nothing to give back
    tracker.claim(repo, issue, actor=tracker.actor(), timeout=plan.tracker_timeout)
    undo.push("bd claim", lambda: tracker.release(repo, issue, timeout=plan.tracker_timeout))

    # Recorded at once, with what to restore: if this spawner dies before it finishes,
    # recovery (fsck --repair, the next spawn of the id) gives the issue back too.
    def claimed(r: Record) -> None:
        r.task["claimed"] = True
        r.task["bd_before"] = {"status": issue.status, "assignee": issue.assignee}

    store.update(repo, task.id, claimed, "spawn: bd issue claimed")
    failpoints.hit("spawn.bd-claim")


def _prompt_values(record: Record, task: Task) -> dict[str, str]:
    issue = task.issue
    description = issue.description if issue else task.description
    if issue and task.extra:
        description = f"{description.strip()}\n\n{task.extra.strip()}".strip()
    design = issue.design if issue else ""
    acceptance = issue.acceptance_criteria if issue else ""
    notes = issue.notes if issue else ""
    return {
        "id": record.id,
        "title": (issue.title if issue else task.title) or record.id,
        "description": description,
        "design": design,
        "acceptance_criteria": acceptance,
        "notes": notes,
        "task_details": prompt.details(description=description, design=design,
                                       acceptance_criteria=acceptance, notes=notes),
        "source": task.source,
        "branch": refnames.short(record.branch),
        "base": record.base["name"],
        "base_oid": record.base["oid"],
        "base_oid_short": record.base["oid"][:12],
        "worktree": record.worktree,
    }


def _claim(repo: Repo, record: Record, branch_at: str | None) -> store.Entry:
    """Claim the record's id; with ``branch_at``, create its branch there in the same
    transaction (neither is made when either exists)."""
    also = {record.branch: branch_at} if branch_at else None
    message = f"git-worker: spawn {record.id}" if also else None  # the branch's reflog
    for attempt in range(2):
        try:
            return store.claim(repo, record, also=also, message=message)
        except WorkerError as e:
            lost = e
        existing = store.read(repo, record.id)
        if existing is None:
            if also and repo.read_ref(record.branch) is not None:
                if attempt == 0:
                    # A concurrent spawn of this id may be half-way through the same
                    # transaction: git renames its refs into place one by one, the branch
                    # (refs/heads/) before the claim (refs/workers/). Ask once more.
                    time.sleep(0.05)
                    continue
                raise _branch_exists(record.branch)
            continue  # removed in between: try once more
        owner = existing.record.owner or {}
        if attempt == 0 and recovery.is_abandoned(existing.record) \
                and owner.get("action") == "spawn":
            recovery.abandon_spawn(repo, existing)
            continue
        raise WorkerError(
            f"worker '{record.id}' already exists (state {existing.record.state}, "
            f"branch {refnames.short(existing.record.branch)})",
            hint=f"git worker show {record.id} says what it holds; to start over, remove it "
                 f"first: git worker rm {record.id}",
        ) from None
    raise lost


def _branch_exists(branch_ref: str) -> WorkerError:
    short = refnames.short(branch_ref)
    return WorkerError(f"branch {short} already exists",
                       hint=f"delete or rename it (git branch -m {short} <new>), "
                            "or set another git config worker.branchPrefix")


def _unclaim(repo: Repo, worker_id: str) -> None:
    entry = store.read(repo, worker_id)
    if entry is not None:
        store.remove(repo, worker_id, entry.oid)


def _run_setup(config: Config, worktree: str, runtime: str, record: Record) -> None:
    env = clean_env({"GIT_WORKER_ID": record.id, "GIT_WORKER_BRANCH": record.branch,
                     "GIT_WORKER_WORKTREE": worktree, "GIT_WORKER_BASE": record.base["name"],
                     **leases.environment(config, record)})
    log_path = RuntimeDir(runtime).setup_log
    for command in config.values("worker.setup"):
        import shlex  # only for a worker.setup (with subprocess: ~5 ms of every spawn's CPU)
        import subprocess

        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise WorkerError(f"worker.setup '{command}' is not valid shell words: {e}",
                              hint=_SETUP_HINT) from None
        with open(log_path, "ab", opener=private) as log:
            log.write(f"$ {command}\n".encode())
            log.flush()
            try:
                code = subprocess.run(argv, cwd=worktree, env=env, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT, check=False).returncode
            except OSError as e:
                raise WorkerError(f"setup command '{command}' cannot run: {e.strerror}",
                                  hint=_SETUP_HINT) from None
        if code != 0:
            tail = _tail(log_path, 5)
            raise WorkerError(f"setup command '{command}' failed (exit {code})" +
                              (f":\n{tail}" if tail else ""),
                              hint=_SETUP_HINT)


def _rmtree(path: str) -> None:
    import shutil  # not at module level: ~3 ms of every spawn before its checkout

    shutil.rmtree(path, ignore_errors=True)


def _tail(path: str, n: int) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(f.readlines()[-n:]).rstrip()


# --- start: the agent of a worker that exists already ------------------------------------

START_FROM = (State.READY, State.STOPPED, State.FAILED, State.EXITED, State.VANISHED)


class Restart:
    """What `git worker start` asks for (None: what the record says, else the settings)."""

    def __init__(self, *, agent: str | None, model: str | None, kind: str, limit: int | None,
                 queue: bool) -> None:
        self.agent = agent
        self.model = model
        self.kind = kind
        self.limit = limit
        self.queue = queue


def start(repo: Repo, config: Config, worker_id: str, how: Restart) -> Record:
    """Start the agent of a `ready` worker, or again that of a stopped/failed/exited/
    vanished one, in its worktree and on its branch. A transaction, like spawn: any failure
    (Ctrl-C included) leaves the worker as it was."""
    entry = store.get(repo, worker_id)
    _check_startable(repo, entry.record)
    team.claim_unpublished(repo, entry)  # with worker.remote: another host may hold the id
    with transaction() as undo:
        return _start(repo, config, entry, how, undo)


def _check_startable(repo: Repo, record: Record) -> str:
    from git_worker import probe

    owner = record.owner
    if owner is not None and owner.get("pid") != os.getpid():
        action = owner.get("action", "spawn")
        if recovery.is_abandoned(record):
            raise WorkerError(f"'{record.id}': a {action} of it was interrupted",
                              hint="finish it first: git worker fsck --repair")
        raise WorkerError(f"'{record.id}' is busy: a {action} is in progress "
                          f"(pid {owner.get('pid')})", hint="wait for it to finish")
    seen = probe.observe(probe.Reality.read(repo), record)
    state = seen.state
    if state in RUNNING:
        raise WorkerError(f"'{record.id}' is {state}: its agent runs already",
                          hint=f"to start it again, end it first: git worker stop {record.id}")
    if state == State.QUEUED:
        raise WorkerError(f"'{record.id}' is queued already: it starts when a slot frees up",
                          hint="stopping a running worker frees one (git worker stop ID)")
    if state not in START_FROM:  # merged, removing…: nothing would change that, no hint
        raise WorkerError(f"'{record.id}' is {state}: there is no agent to start "
                          f"(start takes a worker that is {', '.join(START_FROM)})")
    broken = [p for p in seen.problems if p.startswith(("branch", "worktree"))]
    if broken:
        raise WorkerError(f"cannot start '{record.id}': {broken[0]}",
                          hint="git worker fsck --repair recreates a missing worktree "
                               "from its branch")
    return state


def _start(repo: Repo, config: Config, entry: store.Entry, how: Restart,
           undo: UndoLog) -> Record:
    record = entry.record
    from git_worker import agents, lifecycle

    agent = how.agent or record.agent or config.agent
    model = how.model or record.model
    agents.check(config, agent)
    ident = processes.identity("start")

    def claim(r: Record) -> None:
        if r.owner is not None:
            raise WorkerError(f"'{r.id}' is busy: a {r.owner.get('action')} is in progress",
                              hint="wait for it to finish")
        r.owner = ident | {"from": r.state}
        r.state = State.SPAWNING

    claimed = store.update(repo, record.id, claim, "start: claimed", current=entry)
    undo.push("claim", lambda: _unstart(repo, record.id, claimed.oid, entry.oid))

    runtime = RuntimeDir.of(repo, record.id).path
    ensure_runtime_root(repo)
    why = not_a_directory(runtime)
    if why is not None:  # never followed: files written through it would land elsewhere
        raise WorkerError(f"cannot start '{record.id}': its runtime directory {why}",
                          hint="git worker fsck --repair removes it")
    made = not os.path.isdir(runtime)
    if made:
        os.mkdir(runtime, DIR_MODE)
    kept = _set_aside(runtime)
    undo.push("runtime files", lambda: _restore(runtime, kept, made))
    _write_restart_prompt(repo, record, runtime)

    launcher = launch_or_queue(repo, config, Launch(record.id, record.worktree, agent, model,
                                                    how.kind, record.branch,
                                                    leases.environment(config, record)),
                               limit=how.limit, queue=how.queue, undo=undo)
    queued = "queued_at" in launcher
    state = State.QUEUED if queued else State.RUNNING
    failpoints.hit("start.launch")

    leased = entry.record.leases

    def finish(r: Record) -> None:
        r.launcher = dict(launcher)
        r.leases = leased
        r.agent, r.model = agent, model
        r.owner = None
        if not queued and "launch" not in r.spawn_steps:
            r.spawn_steps = [*r.spawn_steps, "launch"]
        if r.state != State.SPAWNING:
            pass  # the agent has reported already (e.g. waiting): keep what it said
        elif not queued and r.exit_code is not None and os.path.exists(
                RuntimeDir(runtime).exit):
            r.state = lifecycle.exit_state(r.exit_code)  # a quick agent: exited already
        else:
            r.state = state
            r.exit_code = None

    return store.update(repo, record.id, finish, f"start: {state}").record


def _unstart(repo: Repo, worker_id: str, claimed: str, original: str) -> None:
    """Put the record back as it was before the start (its history keeps both commits)."""
    entry = store.read(repo, worker_id)
    if entry is None:
        return
    if entry.oid == claimed:
        repo.update_ref(refnames.registry(worker_id), claimed, original,
                        "git-worker: start undone")
        return

    def back(r: Record) -> None:  # the agent reported meanwhile: restore state and owner
        r.owner, r.state = None, str((entry.record.owner or {}).get("from") or State.STOPPED)

    store.update(repo, worker_id, back, "start: undone")


def _set_aside(runtime: str) -> dict[str, bytes | int]:
    """Before a start: the size of every runtime file (logs only grow), the content of
    those the start replaces; those the last run of the agent left are removed."""
    kept: dict[str, bytes | int] = {}
    for name in os.listdir(runtime):
        path = os.path.join(runtime, name)
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        if name in (*LAST_RUN, PROMPT):
            with open(path, "rb") as f:
                kept[name] = f.read()
            if name != PROMPT:
                os.remove(path)
        else:
            kept[name] = os.path.getsize(path)
    return kept


def _restore(runtime: str, kept: dict[str, bytes | int], made: bool) -> None:
    """Undo a start's changes to the runtime dir: as _set_aside found it."""
    if made:
        _rmtree(runtime)
        return
    for name in os.listdir(runtime):
        path = os.path.join(runtime, name)
        if name not in kept and os.path.isfile(path):
            os.remove(path)
    for name, was in kept.items():
        path = os.path.join(runtime, name)
        if isinstance(was, bytes):
            write_atomically(path, was)
        elif os.path.exists(path) and os.path.getsize(path) > was:
            os.truncate(path, was)


def _write_restart_prompt(repo: Repo, record: Record, runtime: str) -> None:
    """prompt.md = the prompt its spawn rendered, plus what the branch holds already."""
    prompt_path = RuntimeDir(runtime).prompt
    first = RuntimeDir(runtime).first_prompt
    if not os.path.exists(first):
        if os.path.exists(prompt_path):
            import shutil

            shutil.copyfile(prompt_path, first)
        else:  # runtime files lost (e.g. a reboot cleaned them): the task's title will do
            template = prompt.builtin()
            task = Task(record.id, title=record.task.get("title"))
            with open(first, "w", encoding="utf-8", opener=private) as f:
                f.write(prompt.render(template, _prompt_values(record, task)))
    with open(first, encoding="utf-8") as f:
        text = f.read()
    commits = repo.log_oneline(record.branch, record.base["oid"], limit=20)
    if commits:
        text += (f"\n\n## Already done\n\nThis is a restart. Branch "
                 f"{refnames.short(record.branch)} already has {len(commits)} commit(s) "
                 f"on top of {record.base['name']} (newest first):\n\n"
                 + "".join(f"- {line}\n" for line in commits)
                 + "\nContinue from there; do not redo what is committed.\n")
    write_atomically(prompt_path, text)
