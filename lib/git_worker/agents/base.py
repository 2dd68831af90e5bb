"""The adapter protocol, and what every adapter shares.

An adapter knows one coding agent: the argv and environment that start it
non-interactively (`command`), where `worker.agent.<name>.args` go in that argv
(`Command.operands` stay after them), what it may do without asking (`allows`), how
doctor finds and judges its install and login (`health`), the hint when its program is
missing (`missing_hint`), and the shipped program through which it reports its events
(`hook`; agents/events.py records them). agents/__init__.py holds the table of them.

`Adapter` is a typing.Protocol, as pre-commit's `Language` (pre_commit/lang_base.py) is,
not an ABC: the table accepts anything with these members, so a test's fake adapter needs
no base class, and mypy checks each table row against the protocol. What the installed
CLIs have in common (a program on PATH, `--version`, a login in a file or a variable) is
`Cli`, a dataclass each built-in adapter subclasses with its own `command`.
"""

from __future__ import annotations

import enum
import os
import shlex
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from git_worker.installation import Shipped
from git_worker.registry.runtime import RuntimeDir

# The git commands claude and gemini may run without asking: enough to commit their work,
# nothing more (no reset, push, checkout, config, -c, update-ref…). Matched as prefixes, so
# not `git diff` nor `git log`: their --output=<file> writes any file (.git/config, a hook).
GIT_COMMANDS = ("git add", "git commit", "git status")


# How doctor runs `<program> --version`: argv in, first line out (None: it did not answer).
VersionOf = Callable[[list[str]], "str | None"]


@dataclass(frozen=True)
class Context:
    """Where the worker lives: what adapters need beyond the model."""

    worker_id: str
    runtime_dir: str  # <git-common-dir>/workers/<id>
    common_dir: str
    worktree: str
    branch: str  # refs/heads/…, as the record says (never read from the worktree)
    env: dict[str, str] = field(default_factory=dict)  # the worker's leases (leases.py)

    @property
    def prompt_file(self) -> str:
        return RuntimeDir(self.runtime_dir).prompt  # the agent also gets it on stdin


@dataclass(frozen=True)
class Command:
    """What an adapter builds: ``argv`` (program and options), then the user's extra args
    (worker.agent.<name>.args), then ``operands`` — what must stay last ("-p TEXT", "-")."""

    argv: list[str]
    operands: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # A line this call added to <git-common-dir>/info/exclude (for the undo of a spawn).
    excluded: str | None = None


@dataclass(frozen=True)
class Invocation:
    """The agent's complete start: what the launchers run."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    excluded: str | None = None
    # The hint when argv[0] cannot be found (None: the launcher's general one).
    missing_hint: str | None = None


class Verdict(enum.Enum):
    OK = "ok"
    NO_LOGIN = "no login"  # installed, but no credentials in sight: a warning
    MISSING = "missing"  # not installed, not found, or no adapter: fails the default agent


@dataclass(frozen=True)
class Health:
    """doctor's view of one agent: a verdict, what was seen, and the fix."""

    verdict: Verdict
    detail: str
    fix: str | None = None


@runtime_checkable
class Adapter(Protocol):
    # Read-only members (properties here), so that frozen dataclasses satisfy them.
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


@dataclass(frozen=True)
class Login:
    """Where an agent CLI keeps a login: any one present means logged in."""

    files: tuple[str, ...] = ()  # ~ and $VAR expanded; skipped when $VAR is unset
    env: tuple[str, ...] = ()  # variables

    def find(self) -> str | None:
        for var in self.env:
            if os.environ.get(var):
                return var
        for pattern in self.files:
            if "$" in pattern and pattern.split("/")[0][1:] not in os.environ:
                continue
            path = os.path.expanduser(os.path.expandvars(pattern))
            if os.path.isfile(path):
                return path.replace(os.path.expanduser("~"), "~", 1)
        return None


@dataclass(frozen=True)
class Cli(ABC):
    """An agent that is a CLI on PATH: what every built-in adapter shares. Each subclass
    writes `command`."""

    name: str
    program: str  # on PATH, unless worker.agent.<name>.command replaces it
    description: str
    allows: str
    install: str  # how to install ``program`` (doctor's fix)
    login: Login
    hook: Shipped | None = None

    @abstractmethod
    def command(self, program: list[str] | None, *, model: str | None,
                ctx: Context) -> Command: ...

    def argv0(self, program: list[str] | None) -> list[str]:
        return list(program) if program else [self.program]

    def health(self, program: list[str] | None, version_of: VersionOf) -> Health:
        if program is not None:
            return command_health(self.name, program, self.allows)
        if shutil.which(self.program) is None:
            return Health(Verdict.MISSING, f"{self.program} is not on PATH",
                          f"install it ({self.install}), or choose another: "
                          "git config worker.agent <name>")
        version = version_of([self.program, "--version"]) or "version unknown"
        version += f"; allows: {self.allows}"
        found = self.login.find()
        if found is None:
            return Health(Verdict.NO_LOGIN, f"{version}; cannot see a login",
                          f"log in once by running {self.program} interactively"
                          + (f", or set {self.login.env[0]}" if self.login.env else ""))
        return Health(Verdict.OK, f"{version}; logged in ({found})")

    def missing_hint(self, program: str) -> str | None:
        return (f"install {program} (git worker doctor says how), point to it with "
                f"git config worker.agent.{self.name}.command /path/to/{program}, "
                "or pick another agent with -a")


def command_health(name: str, command: list[str], allows: str) -> Health:
    """A configured command is only looked up, never run here: it could start real work."""
    found = shutil.which(command[0]) if "/" not in command[0] else (
        command[0] if os.access(os.path.expanduser(command[0]), os.X_OK) else None)
    if found is None:
        return Health(Verdict.MISSING, f"custom command '{command[0]}' not found",
                      f"fix it: git config worker.agent.{name}.command '<program> <args>'")
    return Health(Verdict.OK, f"custom command {shlex.join(command)}; allows: {allows}")


def model_flag(model: str | None) -> list[str]:
    return ["--model", model] if model else []


# --- <git-common-dir>/info/exclude, for what an agent leaves in its worktree ---------------


def exclude(common_dir: str, pattern: str) -> str | None:
    """Add ``pattern`` to <git-common-dir>/info/exclude; return it if this call added it.

    git reads info/exclude from the common dir only (a linked worktree has none of its
    own), so this also applies to the main worktree — for agent caches, what users want.
    """
    path = os.path.join(common_dir, "info", "exclude")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if pattern in text.splitlines():
        return None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8", errors="surrogateescape") as f:
        f.write(("" if not text or text.endswith("\n") else "\n") + pattern + "\n")
    return pattern


def unexclude(common_dir: str, pattern: str) -> None:
    """Undo exclude(): drop the line again."""
    path = os.path.join(common_dir, "info", "exclude")
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        lines = f.read().splitlines(keepends=True)
    kept = [ln for ln in lines if ln.rstrip("\n") != pattern]
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.writelines(kept)
