"""git worker spawn: one transaction per id; one failing id does not undo the others."""

from __future__ import annotations

import sys

from git_worker import (
    base_branch,
    leases,
    output,
    prompt,
    refnames,
    spawn,
    team,
    tracker,
)
from git_worker import ids as id_rules
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.registry.record import State
from git_worker.repo import Repo


def run(
    repo: Repo,
    config: Config,
    *,
    ids: list[str],
    description: str | None,
    base: str | None,
    fetch: bool,
    agent: str | None,
    model: str | None,
    launch: bool,
    dry_run: bool,
    as_json: bool,
    queue: bool = False,
    review: bool | None = None,
) -> int:
    if not ids:
        raise WorkerError("no task ids given", hint="git worker spawn ID… (or -t ID)")
    config.validate()
    leases.validate(config)
    if description is not None:
        # argv bytes that are not UTF-8 arrive as surrogates (PEP 383), which no UTF-8 file
        # (prompt, record) can hold: the agent gets U+FFFD for them, as bd's text does.
        description = description.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    agent_name = agent or config.agent
    if launch:  # imported only then: spawn --no-launch starts ~5 ms sooner without them
        from git_worker import agents, launchers

        agents.check(config, agent_name)
    template = prompt.load(config, repo.main_worktree)
    source = tracker.kind(config, repo.main_worktree)
    timeout = config.tracker_timeout
    tasks, failed = [], 0
    for raw in dict.fromkeys(ids):  # a repeated id is one task
        try:
            # The task is read from bd before anything is created: a bd failure costs nothing.
            tasks.append(_task(repo, id_rules.validate(raw), description, source, timeout))
        except WorkerError as e:
            print(f"error: {output.visible(raw)}: {output.visible(e, lines=True)}",
                  file=sys.stderr)
            failed += 1
    if not tasks:
        return 1

    plan = spawn.Plan(
        base=base_branch.resolve(repo, config, base, fetch=fetch and not dry_run),
        branch_prefix=config.branch_prefix,
        worktree_root=spawn.worktree_root(repo, config),
        agent=agent_name,
        model=model or config.string("worker.model"),
        launch=launch,
        template=template,
        launcher=launchers.default_kind(config) if launch else "detached",
        max_concurrent=config.max_concurrent,
        queue=queue,
        tracker_timeout=timeout,
        review=review,
        team_settings=None if dry_run else team.settings(repo, config),
        parallel_checkout=not config.checkout_workers_set,
    )
    if plan.base.fetch_error:  # fetching failed, but a local copy of the base is there
        print(f"warning: could not fetch {output.visible(plan.base.name)} "
              f"({output.visible(plan.base.fetch_error)});\n"
              f"warning: starting from the local copy at {plan.base.oid[:12]}, which may be "
              "stale", file=sys.stderr)
    if dry_run:
        return _dry_run(plan, tasks, as_json) or (1 if failed else 0)

    spawned, invalid = [], failed
    progress = None if as_json else output.Progress()
    # Padded so that the lines of several workers form columns.
    id_width = max(len(t.id) for t in tasks)
    branch_width = max(len(plan.branch_prefix + t.id) for t in tasks)
    # Spawned at once (one thread per core), reported one line per id in the order given.
    def interrupted(unfinished: int) -> None:
        if progress:
            progress.clear()
        print(f"interrupted: rolling back {unfinished} unfinished spawn(s) as their step in "
              "progress ends", file=sys.stderr, flush=True)

    outcomes = spawn.spawn_each(repo, config, tasks, plan, interrupted)
    awaited = 0  # the index of the task whose outcome comes next
    while True:
        if progress and awaited < len(tasks):
            progress.start(f"spawning {tasks[awaited].id}")
        item = next(outcomes, None)
        if item is None:
            break
        task, record = item
        awaited = tasks.index(task) + 1
        if isinstance(record, WorkerError):
            if progress:
                progress.clear()
            print(f"error: {task.id}: {output.visible(record, lines=True)}", file=sys.stderr)
            failed += 1
            continue
        spawned.append(record)
        if task.id in plan.offline:
            if progress:
                progress.clear()
            print(f"warning: {task.id}: not published: "
                  f"{output.visible(plan.offline[task.id], lines=True)}", file=sys.stderr)
        if progress:
            progress.done(
                f"{output.paint('spawned', 'green')} {record.id.ljust(id_width)}  "
                f"{refnames.short(record.branch).ljust(branch_width)}  from "
                f"{output.visible(plan.base.name)} ({plan.base.oid[:7]})  "
                f"{output.visible(output.relpath(record.worktree))}  [{record.state}]")
            if record.state == State.QUEUED:
                print(f"  queued: worker.maxConcurrent ({plan.max_concurrent}) agents are "
                      "running; it starts when one ends")
    if plan.team_settings is not None and any(r.id not in plan.offline for r in spawned):
        _publish_pending(repo, plan.team_settings)  # the remote is back: what waited goes now
    if any(r.state == "queued" for r in spawned) or (launch and failed > invalid):
        # A slot may have freed up while these were being queued (its runner did not see
        # them as queued yet), or a rolled-back spawn held one that a worker queued
        # meanwhile waits for: the queue is looked at again now.
        from git_worker import lifecycle

        lifecycle.start_queued(repo)
    requested = len(tasks) + invalid
    if progress and requested > 1:
        print(f"{len(spawned)} of {requested} workers spawned"
              + ("; watch them with: git worker list" if spawned else ""))
    if as_json:
        output.print_json([r.as_dict() for r in spawned])
    return 1 if failed else 0


def _publish_pending(repo: Repo, settings: team.Settings) -> None:
    try:
        done = team.publish_pending(repo, settings)
    except WorkerError as e:
        print(f"warning: {output.visible(e, lines=True)}", file=sys.stderr)
        return
    from git_worker.commands.publish import print_conflicts

    print_conflicts(done.conflicts, settings.remote)


def _task(repo: Repo, worker_id: str, description: str | None, source: str,
          timeout: float) -> spawn.Task:
    """The task for ``worker_id``: the bd issue, or the id and -d TEXT."""
    if source == "bd":
        try:
            issue = tracker.show(repo, worker_id, timeout=timeout)
        except tracker.NotFound:
            if description is None:
                raise
            print(f"note: bd has no issue '{worker_id}'; the task is the -d text",
                  file=sys.stderr)
        else:
            return spawn.Task(worker_id, title=issue.title, description=issue.description,
                              source="bd", issue=issue, extra=description or "")
    return spawn.Task(worker_id, title=None, description=description or "")


def _dry_run(plan: spawn.Plan, tasks: list[spawn.Task], as_json: bool) -> int:
    rows = []
    for task in tasks:
        rows.append({
            "id": task.id,
            "branch": refnames.branch(plan.branch_prefix, task.id),
            "worktree": spawn.worktree_path(plan.worktree_root, task.id),
            "base": plan.base.as_json(),
            "would_fetch": plan.base.remote is not None,
            "agent": plan.agent if plan.launch else None,
            "model": plan.model,
        })
    if as_json:
        output.print_json(rows)
        return 0
    for row in rows:
        print(output.visible(
              f"would spawn {row['id']}: branch {refnames.short(str(row['branch']))} from "
              f"{plan.base.name} ({plan.base.oid[:7] or 'after fetch'}), "
              f"worktree {row['worktree']}, agent {row['agent'] or '(none)'}"))
    return 0
