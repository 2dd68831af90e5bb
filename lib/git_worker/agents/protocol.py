"""The adapter protocol (see agents/base.py): what agents.TABLE's rows have.

Its own module, because typing.Protocol costs a launched spawn's start-up ~3 ms: the
agents package names it for annotations only, and loads it at run time only when
`agents.Adapter` is asked for (`isinstance(x, agents.Adapter)`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from git_worker.agents.base import Command, Context, Health, VersionOf
    from git_worker.installation import Shipped


@runtime_checkable
class Adapter(Protocol):
    # Read-only members (properties here), so that plain attributes satisfy them.
    @property
    def name(self) -> str:
        """What -a and worker.agent say."""
        ...

    @property
    def description(self) -> str:
        """One line, for completion."""
        ...

    @property
    def allows(self) -> str:
        """One line, for doctor and docs/agents.md: what it may do without asking."""
        ...

    @property
    def hook(self) -> Shipped | None:
        """The shipped program it hands its agent to report events (`check` requires it
        before a spawn; None: only the exit, which the runner records, reports)."""
        ...

    def command(self, program: list[str] | None, *, model: str | None,
                ctx: Context) -> Command:
        """The argv and environment that start the agent; ``program`` is
        worker.agent.<name>.command when set (it replaces the adapter's own program)."""
        ...

    def health(self, program: list[str] | None, version_of: VersionOf) -> Health:
        """Is it installed, and logged in? Judged from files and the environment, never by
        calling its service; ``program`` as for `command`."""
        ...

    def missing_hint(self, program: str) -> str | None:
        """What to do when ``program`` (argv[0]) is not found at start (None: the general
        hint, check worker.agent.<name>.command)."""
        ...
