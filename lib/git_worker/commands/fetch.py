"""git worker fetch: every host's records from worker.remote into a read-only view."""

from __future__ import annotations

from git_worker import output, team
from git_worker.commands.publish import print_conflicts, required
from git_worker.config import Config
from git_worker.registry import store
from git_worker.repo import Repo


def run(repo: Repo, config: Config, *, branches: bool) -> int:
    settings = required(repo, config)
    done = team.fetch(repo, settings, branches=config.branch_prefix if branches else None)
    seen = team.tracked(repo, settings.remote)
    hosts = {(e.record.clone or {}).get("id") for e in seen.values()
             if isinstance(e, store.Entry)}
    print(f"fetched {len(seen)} record(s) of {len(hosts)} host(s) from "
          f"{output.visible(settings.remote)}" + (" and the workers' branches" if branches
                                                   else ""))
    if done.pushed or done.removed:
        pending = ", ".join(done.pushed + done.removed)
        print(f"published what was pending: {output.visible(pending)}")
    print_conflicts(done.conflicts, settings.remote)
    return 0
