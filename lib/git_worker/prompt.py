"""The prompt an agent receives: the task plus plain working instructions."""

from __future__ import annotations

from git_worker.registry import Record

BUILTIN = """\
You are working on task {id}: {title}

{description}

You are in a git worktree of your own at {worktree}, on branch {branch_short}, which
starts from {base_name} ({base_oid_short}).

How to work:
- Make the change the task asks for, with tests where the project has them.
- Commit your work on this branch with clear messages. Do not push, do not switch branches.
- When you are done, say so and summarise what you changed; if you are blocked, say why.
"""


def render(record: Record, description: str) -> str:
    return BUILTIN.format(
        id=record.id,
        title=record.task.get("title") or record.id,
        description=description.strip() or "(no description given)",
        worktree=record.worktree,
        branch_short=record.branch.removeprefix("refs/heads/"),
        base_name=record.base["name"],
        base_oid_short=record.base["oid"][:12],
    )
