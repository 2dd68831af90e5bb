"""git worker list: every worker, its live state, and where record and reality disagree."""

from __future__ import annotations

from git_worker import output, probe, refnames, registry
from git_worker.repo import Repo

# typing only for annotations: importing it costs ~5 ms on every list and show.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def collect(repo: Repo) -> list[dict[str, Any]]:
    """The records plus derived fields: what `list --json` prints."""
    rows: list[dict[str, Any]] = []
    queued: list[registry.Record] = []
    reality = probe.Reality.read(repo, refnames.REGISTRY)  # one for-each-ref for both
    found_all = list(registry.all_entries(repo, reality.refs))
    ahead = probe.ahead_counts(reality, [f.record for f in found_all
                                         if not isinstance(f, registry.Corrupt)])
    for found in found_all:
        if isinstance(found, registry.Corrupt):
            rows.append({"id": found.id, "state": "corrupt", "registry_oid": found.oid,
                         "problems": [f"unreadable record: {found.reason}; run: git worker fsck"]})
            continue
        seen = probe.observe(reality, found.record)
        row = found.record.as_dict()
        row.update(state=seen.state, exit_code=seen.exit_code, behind=seen.behind,
                   problems=seen.problems)
        # `uncommitted` is not checked here: only `git status` tells it exactly, and that is
        # a process per worker (`show` runs it); see README, "git worker list --json".
        row.update(probe.at_a_glance(reality, found.record, seen.state, ahead[found.record.id],
                                     check_uncommitted=False))
        rows.append(row)
        if found.record.state == "queued":
            queued.append(found.record)
    if queued:
        _stalled_queue(repo, rows, queued)
    return rows


def _stalled_queue(repo: Repo, rows: list[dict[str, Any]],
                   queued: list[registry.Record]) -> None:
    """A queue with free slots and nothing starting it: a problem of its oldest worker."""
    from git_worker import lifecycle  # only with queued workers: it costs list ~10 ms

    if not lifecycle.queue_busy(repo):
        running = sum(r["state"] in lifecycle.RUNNING for r in rows)
        problem = lifecycle.stalled(queued, running, lifecycle.max_concurrent(repo))
        if problem:
            oldest = min(queued, key=lifecycle.queue_order).id
            next(r for r in rows if r["id"] == oldest)["problems"].append(problem)


def run(repo: Repo, *, as_json: bool, show_all: bool, size: bool = False) -> int:
    rows = collect(repo)
    if not show_all:
        rows = [r for r in rows if r["state"] != "merged" or r["problems"]]
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
    table = []
    for r in rows:
        if r["state"] == "corrupt":
            table.append([output.visible(r["id"]), "corrupt", "?", "?", "?", "?", "?", "?", "?"]
                         + (["?"] if size else []))
            continue
        coded = r["state"] in ("failed", "stopped") and r["exit_code"] is not None
        state = r["state"] + (f" ({r['exit_code']})" if coded else "")
        behind = f" (+{r['behind']})" if r.get("behind") else ""
        # A record is anyone's to write: every field of it is shown made visible.
        v = output.visible
        table.append([v(r["id"]), _colour(v(state)), v(refnames.short(r["branch"])),
                      v(r["base"]["name"]) + behind, "?" if r["ahead"] is None else str(r["ahead"]),
                      _verdict(r["verdict"]), v(r["agent"] or "-"),
                      output.age(r["created_at"]), v(output.relpath(r["worktree"]))]
                     + ([output.size(r["size"] or 0)] if size else []))
    text = output.table(["ID", "STATE", "BRANCH", "BASE", "AHEAD", "REVIEW", "AGENT", "AGE",
                         "PATH"] + (["SIZE"] if size else []), table)
    lines = text.split("\n")
    print(output.paint(lines[0], "bold"))
    for line, r in zip(lines[1:], rows, strict=True):
        print(line)
        if r.get("message"):
            print(output.paint(f"  > {_one_line(r['message'])}", "yellow"))
        for p in r["problems"]:
            print(output.paint(f"  ! {output.visible(p)}", "yellow"))
    return 0


def _verdict(verdict: str | None) -> str:
    colour = {"passed": "green", "blocked": "red", "error": "red", "stale": "yellow"}
    return output.paint(verdict, colour[verdict]) if verdict in colour else "-"


def _one_line(message: str, limit: int = 100) -> str:
    """An agent's message on one line: its text is the agent's, not ours to lay out."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _colour(state: str) -> str:
    colour = {"running": "blue", "waiting": "yellow", "exited": "green", "failed": "red",
              "reviewed": "green", "merged": "dim", "ready": "dim", "spawning": "yellow",
              "vanished": "red", "stopped": "dim", "queued": "dim"}.get(state.split()[0])
    return output.paint(state, colour) if colour else state
