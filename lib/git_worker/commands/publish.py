"""git worker publish: this clone's records (and the workers' branches) to worker.remote."""

from __future__ import annotations

import sys

from git_worker import output, team
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.registry import store
from git_worker.registry.record import Record
from git_worker.repo import Repo


def required(repo: Repo, config: Config) -> team.Settings:
    settings = team.settings(repo, config)
    if settings is None:
        raise WorkerError("worker.remote is not set: this clone shares its registry with no "
                          "one", hint="name the team's remote: git config worker.remote origin")
    return settings


def print_conflicts(conflicts: dict[str, Record], remote: str) -> None:
    for worker_id, theirs in conflicts.items():
        print(f"warning: {output.visible(worker_id)}: {remote} holds another host's "
              f"'{output.visible(worker_id)}' ({output.visible(team.holder(theirs))}); "
              "both are kept; see git worker fsck", file=sys.stderr)


def run(repo: Repo, config: Config, ids: list[str]) -> int:
    settings = required(repo, config)
    entries = [store.get(repo, i) for i in dict.fromkeys(ids)]  # a typo fails first
    done = team.publish(repo, settings, ids or None)
    if not entries:
        entries = [e for e in store.all_entries(repo) if isinstance(e, store.Entry)]
    branches = team.publish_branches(repo, settings, [
        e.record.branch for e in entries if e.record.id not in done.conflicts])
    for worker_id in done.pushed:
        print(f"published {output.visible(worker_id)} to {output.visible(settings.remote)}")
    for worker_id in done.removed:
        print(f"removed {output.visible(worker_id)} from {output.visible(settings.remote)} "
              "(removed here)")
    if branches:
        print(f"pushed {len(branches)} branch(es): {output.visible(', '.join(branches))}")
    if not (done.pushed or done.removed or branches):
        print(f"up to date with {output.visible(settings.remote)}")
    print_conflicts(done.conflicts, settings.remote)
    return 1 if done.conflicts else 0
