"""Every worker at once: the rows `list --json` prints and `watch` shows.

Each row is a record plus what probe.py observes of it (live state, problems, ahead,
verdict, a waiting agent's message); with worker.remote, the other hosts' records follow,
as last fetched, with the team's fields. Its own module, above probe and lifecycle (the
stalled queue is lifecycle's to judge), so that neither imports the other.
"""

from __future__ import annotations

from git_worker import locks, probe, refnames
from git_worker.registry import store
from git_worker.registry.record import RUNNING, Corrupt, Record, State
from git_worker.registry.record_cache import RecordCache
from git_worker.repo import Repo

# typing only for annotations: importing it costs ~5 ms on every list and show.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def collect(repo: Repo, view: list[Any] | None = None) -> list[dict[str, Any]]:
    """The records plus derived fields: what `list --json` prints. With worker.remote, the
    other hosts' records follow, as last fetched (``view``, a one-item list, gets the
    team's view)."""
    rows: list[dict[str, Any]] = []
    queued: list[Record] = []
    # One for-each-ref for all three: branches, our records, the team's records.
    reality = probe.Reality.read(repo, refnames.REGISTRY, refnames.TEAM)
    team_view = None
    cache = RecordCache.of(repo)  # the records read before: only changed ones are read
    if not any(r.startswith(refnames.TEAM) for r in reality.refs):
        found_all = list(store.all_entries(repo, reality.refs, cache=cache))
        # worker.remote is read (one git config) only when a record of ours carries its
        # clone (spawned with worker.remote) and nothing was fetched yet: is it published?
        if any(isinstance(f, store.Entry) and f.record.clone for f in found_all):
            from git_worker import team

            team_view = team.view(repo, reality.refs, team.remote_of(repo), [])
    else:
        from git_worker import team

        settings = team.remote_of(repo)
        theirs = refnames.team(settings.get("worker.remote", ""))
        ours_table = {r: o for r, o in reality.refs.items() if r.startswith(refnames.REGISTRY)}
        seen_table = {r: o for r, o in reality.refs.items() if r.startswith(theirs)}
        # this clone's records and the team's, in one cat-file
        found_all, fetched = store.read_tables(repo, [(ours_table, refnames.REGISTRY),
                                                   (seen_table, theirs)], cache=cache)
        team_view = team.view(repo, reality.refs, settings, fetched)
    if view is not None:
        view.append(team_view)
    ahead = probe.ahead_counts(reality, [f.record for f in found_all
                                   if not isinstance(f, Corrupt)])
    for found in found_all:
        if isinstance(found, Corrupt):
            rows.append({"id": found.id, "state": "corrupt", "registry_oid": found.oid,
                         "problems": [f"unreadable record: {found.reason}; run: git worker fsck"]})
            continue
        seen = probe.observe(reality, found.record)
        row = found.record.as_dict()
        row.update(state=seen.state, exit_code=seen.exit_code, behind=seen.behind,
                   problems=seen.problems)
        # `uncommitted` is not checked here: only `git status` tells it exactly, and that is
        # a process per worker (`show` runs it); see docs/output.md, "git worker list --json".
        row.update(probe.at_a_glance(reality, found.record, seen.state, ahead[found.record.id],
                               check_uncommitted=False))
        if team_view is not None:
            _team_fields(row, team_view)
        rows.append(row)
        if found.record.state == State.QUEUED:
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

    if not locks.queue_busy(repo):
        running = sum(r["state"] in RUNNING for r in rows)
        problem = lifecycle.stalled(queued, running, lifecycle.max_concurrent(repo))
        if problem:
            oldest = min(queued, key=lifecycle.queue_order).id
            next(r for r in rows if r["id"] == oldest)["problems"].append(problem)
