"""git worker show: one worker's record (and with --history, its every state)."""

from __future__ import annotations

from datetime import UTC, datetime

from git_worker import leases, output, probe, review
from git_worker.registry import store
from git_worker.repo import Repo


def run(repo: Repo, worker_id: str, *, as_json: bool, history: bool) -> int:
    entry = store.get(repo, worker_id)
    reality = probe.Reality.read(repo)
    seen = probe.observe(reality, entry.record)
    row = entry.record.as_dict()
    row.update(state=seen.state, exit_code=seen.exit_code, behind=seen.behind,
               problems=seen.problems)
    ahead = probe.ahead_counts(reality, [entry.record])[entry.record.id]
    glance = probe.at_a_glance(reality, entry.record, seen.state, ahead, check_uncommitted=True)
    row.update(glance)
    events = []
    if history:
        for oid, when, event, _ in store.history(repo, worker_id):
            stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            events.append({"commit": oid, "at": stamp, "event": event})
        row["history"] = events
    if as_json:
        output.print_json(row)
        return 0
    r = entry.record
    fields = [
        ("id", r.id),
        ("state", seen.state + (f" (exit {seen.exit_code})" if seen.exit_code is not None else "")),
        ("task", r.task.get("title") or "-"),
        ("branch", r.branch),
        ("base", f"{r.base['name']} {r.base['oid'][:12]}"
                 + ("" if r.base.get("fetched") else " (not fetched)")
                 + (f", {seen.behind} behind" if seen.behind else "")),
        ("worktree", r.worktree),
        ("agent", f"{r.agent or '-'}" + (f" ({r.model})" if r.model else "")),
        ("launcher", " ".join(f"{k}={v}" for k, v in r.launcher.items() if v is not None) or "-"),
        ("created", f"{r.created_at} ({output.age(r.created_at)} ago)"),
        ("updated", r.updated_at),
        ("host", r.host),
    ]
    if r.base.get("fetch_error"):
        fields.append(("fetch error", r.base["fetch_error"]))
    fields.append(("review", review.describe(r.review or {})
                             + (" (stale: the branch has moved since)"
                                if glance["verdict"] == probe.STALE else "")))
    fields.append(("commits", "unknown" if ahead is None else f"{ahead} ahead of its base"))
    dirty = glance["uncommitted"]
    fields.append(("changes", "unknown" if dirty is None else
                   "uncommitted (modified, staged or untracked files)" if dirty
                   else "none uncommitted"))
    if glance["message"]:
        fields.append(("message", str(glance["message"])))
    if r.leases:
        fields.append(("leases", leases.describe(r)))
    if r.merge:
        fields.append(("merged", f"into {r.merge['into'].removeprefix('refs/heads/')} as "
                                 f"{r.merge['commit'][:12]} ({r.merge['kind']})"))
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        print(f"{key.ljust(width)}  {output.visible(value)}")
    for p in seen.problems:
        print(output.paint(f"! {output.visible(p)}", "yellow"))
    if history:
        print()
        for e in events:
            print(f"{e['commit'][:12]}  {e['at']}  {output.visible(e['event'])}")
    return 0
