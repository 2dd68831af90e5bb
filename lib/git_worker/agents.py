"""Agent adapters: how to start each coding agent non-interactively.

An adapter turns (prompt file, model, extra args) into an argv; the prompt also arrives on
stdin and its path in GIT_WORKER_PROMPT_FILE. Task text never reaches a shell.
"""

from __future__ import annotations

from dataclasses import dataclass

from git_worker.config import Config
from git_worker.errors import WorkerError


@dataclass(frozen=True)
class Invocation:
    name: str
    argv: list[str]
    env: dict[str, str]


def custom_names(config: Config) -> list[str]:
    names = []
    for e in config.entries:
        parts = e.key.split(".")
        if len(parts) >= 4 and parts[1] == "agent" and parts[-1] == "command":
            names.append(".".join(parts[2:-1]))
    return sorted(set(names))


def invocation(config: Config, name: str, *, model: str | None, prompt_file: str) -> Invocation:
    env = {"GIT_WORKER_PROMPT_FILE": prompt_file}
    extra = config.words(f"worker.agent.{name}.args") or []
    command = config.words(f"worker.agent.{name}.command")
    if command is None:
        raise WorkerError(
            f"unknown agent '{name}'",
            hint=f"define it: git config worker.agent.{name}.command 'my-agent --flag'",
        )
    if model:
        env["GIT_WORKER_MODEL"] = model
    return Invocation(name, [*command, *extra], env)
