"""git worker list: every worker, its live state, and where record and reality disagree."""

from __future__ import annotations

from git_worker import locks, output, probe, refnames
from git_worker.registry import store
from git_worker.registry.record import RUNNING, Corrupt, Record, State
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
    if not any(r.startswith(refnames.TEAM) for r in reality.refs):
        found_all = list(store.all_entries(repo, reality.refs))
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
                                                      (seen_table, theirs)])
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



def run(repo: Repo, *, as_json: bool, show_all: bool, size: bool = False,
        fetch: bool = False) -> int:
    if fetch:
        _fetch(repo)
    views: list[Any] = []
    rows = collect(repo, views)
    team_view = views[0]
    if not show_all:
        rows = [r for r in rows if r["state"] != State.MERGED or r["problems"]]
    if size:  # walks every worktree: only on request
        from git_worker.prune import disk_usage

        for r in rows:
            r["size"] = disk_usage(r["worktree"]) if r.get("worktree") else None
    if as_json:
        output.print_json(rows)
        return 0
    if not rows:
        print("no workers; start one with: git worker spawn ID")
        return 0
    hosts = {(r["team"]["host"], (r.get("clone") or {}).get("id")) for r in rows if "team" in r}
    names = [name for name, _ in hosts]
    with_host = len(hosts) > 1 or any(_read_only(r) for r in rows)
    table = []
    for r in rows:
        host = []
        if with_host:
            name = r["team"]["host"] if "team" in r else "?"
            if names.count(name) > 1:  # two clones of one machine: tell them apart
                name += "#" + str((r.get("clone") or {}).get("id", "?"))[:6]
            host = [output.visible(name)]
        if r["state"] == "corrupt":
            table.append([output.visible(r["id"]), *host, "corrupt", "?", "?", "?", "?", "?",
                          "?", "?"] + (["?"] if size else []))
            continue
        coded = r["state"] in (State.FAILED, State.STOPPED) and r["exit_code"] is not None
        state = r["state"] + (f" ({r['exit_code']})" if coded else "")
        behind = f" (+{r['behind']})" if r.get("behind") else ""
        # A record is anyone's to write: every field of it is shown made visible.
        v = output.visible
        table.append([v(r["id"]), *host, _colour(v(state)), v(refnames.short(r["branch"])),
                      v(r["base"]["name"]) + behind, "?" if r["ahead"] is None else str(r["ahead"]),
                      _verdict(r["verdict"]), v(r["agent"] or "-"),
                      output.age(r["created_at"]),
                      v(r["worktree"] if _read_only(r) else output.relpath(r["worktree"]))]
                     + ([output.size(r["size"] or 0)] if size else []))
    text = output.table(["ID", *(["HOST"] if with_host else []), "STATE", "BRANCH", "BASE",
                         "AHEAD", "REVIEW", "AGENT", "AGE", "PATH"] + (["SIZE"] if size else []),
                        table)
    lines = text.split("\n")
    print(output.paint(lines[0], "bold"))
    for line, r in zip(lines[1:], rows, strict=True):
        print(line)
        if r.get("message"):
            print(output.paint(f"  > {_one_line(r['message'])}", "yellow"))
        for p in r["problems"]:
            print(output.paint(f"  ! {output.visible(p)}", "yellow"))
    if team_view is not None and any(_read_only(r) for r in rows):
        print(_view_age(team_view))
    return 0


def _read_only(row: dict[str, Any]) -> bool:
    return bool(row.get("team", {}).get("read_only"))


def _view_age(view: Any) -> str:
    from git_worker import team

    age = team.age(view.fetched_at)
    when = "never fetched" if age is None else f"as fetched {output.duration(age)} ago"
    return (f"other hosts' workers: {output.visible(when)} from {output.visible(view.remote)}; "
            "refresh: git worker list --fetch")


def _fetch(repo: Repo) -> None:
    import sys

    from git_worker import team
    from git_worker.commands.publish import print_conflicts, required
    from git_worker.config import Config
    from git_worker.errors import WorkerError

    settings = required(repo, Config.load(repo.common_dir))
    try:
        done = team.fetch(repo, settings)
    except WorkerError as e:  # the view as it was: list still lists
        print(f"warning: {output.visible(e, lines=True)}", file=sys.stderr)
        return
    print_conflicts(done.conflicts, settings.remote)


def _verdict(verdict: str | None) -> str:
    colour = {"passed": "green", "blocked": "red", "error": "red", "stale": "yellow"}
    return output.paint(verdict, colour[verdict]) if verdict in colour else "-"


def _one_line(message: str, limit: int = 100) -> str:
    """An agent's message on one line: its text is the agent's, not ours to lay out."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_COLOURS: dict[str, str] = {
    State.RUNNING: "blue", State.WAITING: "yellow", State.EXITED: "green", State.FAILED: "red",
    State.REVIEWED: "green", State.MERGED: "dim", State.READY: "dim", State.SPAWNING: "yellow",
    State.VANISHED: "red", State.STOPPED: "dim", State.QUEUED: "dim"}


def _colour(state: str) -> str:
    colour = _COLOURS.get(state.split()[0])
    return output.paint(state, colour) if colour else state
