"""git worker list: every worker, its live state, and where record and reality disagree."""

from __future__ import annotations

from git_worker import listing, output, refnames
from git_worker.registry.record import State
from git_worker.repo import Repo

# typing only for annotations: importing it costs ~5 ms on every list and show.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def run(repo: Repo, *, as_json: bool, show_all: bool, size: bool = False,
        fetch: bool = False) -> int:
    if fetch:
        _fetch(repo)
    views: list[Any] = []
    rows = listing.collect(repo, views)
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
