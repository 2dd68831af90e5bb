"""A custom agent: any name with `git config worker.agent.<name>.command '<program> <args>'`.

It runs that command as it is, in the worktree, with the prompt on stdin (its path in
GIT_WORKER_PROMPT_FILE) and the model, if any, in GIT_WORKER_MODEL; the extra args
(worker.agent.<name>.args) follow the command.
"""

from __future__ import annotations

from git_worker.agents.base import Command, command_health

# typing only for annotations: a launched spawn imports this module before its claim.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_worker.agents.base import Context, Health, VersionOf
    from git_worker.installation import Shipped

ALLOWS = "whatever its configured command does"


class Custom:
    description = "custom agent (worker.agent.<name>.command)"
    allows = ALLOWS
    hook: Shipped | None = None  # its events: only its exit, which the runner records

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Custom) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def command(self, program: list[str] | None, *, model: str | None,
                ctx: Context) -> Command:
        if not program:  # agents.adapter() only makes a Custom for a configured command
            raise ValueError(f"custom agent {self.name} without worker.agent.{self.name}.command")
        return Command(list(program), env={"GIT_WORKER_MODEL": model} if model else {})

    def health(self, program: list[str] | None, version_of: VersionOf) -> Health:
        if not program:
            raise ValueError(f"custom agent {self.name} without worker.agent.{self.name}.command")
        return command_health(self.name, program, self.allows)

    def missing_hint(self, program: str) -> str | None:
        return None
