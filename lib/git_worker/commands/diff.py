"""git worker diff: a worker's change against the branch it would land in."""

from __future__ import annotations

from git_worker import git, merge, refnames
from git_worker.errors import WorkerError
from git_worker.registry import store
from git_worker.repo import Repo


def run(repo: Repo, worker_id: str, options: list[str]) -> int:
    record = store.get(repo, worker_id).record
    if repo.read_ref(record.branch) is None:
        raise WorkerError(f"branch {refnames.short(record.branch)} of '{worker_id}' is missing",
                          hint="git worker fsck explains the drift")
    try:
        target = merge.target_ref(repo, record, None)
    except WorkerError:
        target = str(record.base.get("ref") or record.base["oid"])  # a tag: its own base
    # git's own pager, colours and options: `target...branch` is what a merge would bring.
    return git.show_diff(repo.cwd_worktree or repo.common_dir, options, target, record.branch)
