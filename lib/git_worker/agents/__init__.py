"""Agent adapters: how to start each coding agent non-interactively, and the one table of
them that everything else (spawn, start, doctor, completion, the launchers) reads.

An adapter (agents/base.py: the protocol) turns (model, the worker's runtime dir) into an
argv and an environment. The prompt always arrives on stdin (and its path in
GIT_WORKER_PROMPT_FILE): task text never becomes an argument and never reaches a shell.
What each built-in adapter allows by default is in its module and in docs/agents.md.
Extra flags (e.g. more permissions) only from `git config worker.agent.<name>.args`;
`worker.agent.<name>.command` replaces a built-in adapter's program (a wrapper script), or
defines a custom agent (agents/custom.py) under any other name.

Adding an agent: one module with its adapter (agents/claude.py is one), one row in TABLE.
"""

from __future__ import annotations

from git_worker.agents import aider, claude, codex, gemini
from git_worker.agents.base import (
    GIT_COMMANDS,
    Context,
    Health,
    Invocation,
    Verdict,
    exclude,
    unexclude,
)
from git_worker.agents.custom import Custom
from git_worker.errors import WorkerError
from git_worker.installation import require

# typing only for annotations: a launched spawn imports this package before its claim
# (agents/base.py says what that cost).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_worker.agents.base import VersionOf
    from git_worker.agents.protocol import Adapter
    from git_worker.config import Config

__all__ = ["GIT_COMMANDS", "TABLE", "Adapter", "Context", "Health", "Invocation", "Verdict",
           "adapter", "check", "custom_names", "exclude", "health",
           "invocation", "known", "unexclude"]

# The built-in adapters, in the order error messages list them.
TABLE: dict[str, Adapter] = {a.name: a for a in (
    claude.ADAPTER,
    codex.ADAPTER,
    aider.ADAPTER,
    gemini.ADAPTER,
)}


def __getattr__(name: str) -> object:
    if name == "Adapter":  # the protocol, at run time (see agents/base.py)
        from git_worker.agents.protocol import Adapter

        return Adapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def custom_names(config: Config) -> list[str]:
    names = []
    for e in config.entries:
        parts = e.key.split(".")
        if len(parts) >= 4 and parts[1] == "agent" and parts[-1] == "command":
            names.append(".".join(parts[2:-1]))
    return sorted(set(names))


def adapter(config: Config, name: str) -> Adapter:
    """The adapter for ``name``: a built-in one, or a custom one defined in config."""
    found = TABLE.get(name)
    if found is not None:
        return found
    if config.words(f"worker.agent.{name}.command") is not None:
        return Custom(name)
    raise _unknown(config, name)


def known(config: Config, name: str) -> bool:
    return name in TABLE or config.words(f"worker.agent.{name}.command") is not None


def check(config: Config, name: str) -> None:
    """Fail before anything is created when ``name`` is no adapter at all, or when the
    hook it hands its agent is missing from this installation."""
    hook = adapter(config, name).hook
    if hook is not None:
        require(hook)


def invocation(config: Config, name: str, *, model: str | None, ctx: Context) -> Invocation:
    """The argv and environment that start agent ``name`` for the worker in ``ctx``."""
    agent = adapter(config, name)
    command = agent.command(config.words(f"worker.agent.{name}.command"), model=model, ctx=ctx)
    extra = config.words(f"worker.agent.{name}.args") or []
    env = {**ctx.env, "GIT_WORKER_PROMPT_FILE": ctx.prompt_file, **command.env}
    return Invocation(name, [*command.argv, *extra, *command.operands], env, command.excluded,
                      agent.missing_hint(command.argv[0]))


def health(config: Config, name: str, version_of: VersionOf) -> Health:
    """doctor's verdict on agent ``name``: installed, logged in, or no adapter at all."""
    try:
        agent = adapter(config, name)
    except WorkerError:
        return Health(Verdict.MISSING, f"unknown agent '{name}'",
                      f"define it: git config worker.agent.{name}.command '<program> <args>', "
                      f"or pick one of: {', '.join(TABLE)}")
    return agent.health(config.words(f"worker.agent.{name}.command"), version_of)


def _unknown(config: Config, name: str) -> WorkerError:
    names = ", ".join([*TABLE, *custom_names(config)])
    return WorkerError(
        f"unknown agent '{name}' (known: {names})",
        hint=f"define it: git config worker.agent.{name}.command 'my-agent --flag'",
    )
