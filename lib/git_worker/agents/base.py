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
`Cli`, which each built-in adapter subclasses with its own `command`.

Plain classes, not dataclasses, and the protocol in agents/protocol.py (`agents.Adapter`
loads it only when asked for at run time): every launched spawn imports this package
before its claim, and dataclasses (with inspect) and typing cost it ~25 ms, measured.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod

from git_worker.installation import Shipped
from git_worker.registry.runtime import RuntimeDir

# typing only for annotations (see above).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    # How doctor runs `<program> --version`: argv in, first line out (None: no answer).
    VersionOf = Callable[[list[str]], "str | None"]

# The git commands claude and gemini may run without asking: enough to commit their work,
# nothing more (no reset, push, checkout, config, -c, update-ref…). Matched as prefixes, so
# not `git diff` nor `git log`: their --output=<file> writes any file (.git/config, a hook).
GIT_COMMANDS = ("git add", "git commit", "git status")


class Context:
    """Where the worker lives: what adapters need beyond the model."""

    __slots__ = ("worker_id", "runtime_dir", "common_dir", "worktree", "branch", "env")

    def __init__(self, worker_id: str, runtime_dir: str, common_dir: str, worktree: str,
                 branch: str, env: dict[str, str] | None = None) -> None:
        self.worker_id = worker_id
        self.runtime_dir = runtime_dir  # <git-common-dir>/workers/<id>
        self.common_dir = common_dir
        self.worktree = worktree
        self.branch = branch  # refs/heads/…, as the record says (never read from the worktree)
        self.env = env or {}  # the worker's leases (leases.py)

    @property
    def prompt_file(self) -> str:
        return RuntimeDir(self.runtime_dir).prompt  # the agent also gets it on stdin


class Command:
    """What an adapter builds: ``argv`` (program and options), then the user's extra args
    (worker.agent.<name>.args), then ``operands`` — what must stay last ("-p TEXT", "-");
    ``excluded``: a line this call added to <git-common-dir>/info/exclude (for the undo of
    a spawn)."""

    __slots__ = ("argv", "operands", "env", "excluded")

    def __init__(self, argv: list[str], operands: list[str] | None = None,
                 env: dict[str, str] | None = None, excluded: str | None = None) -> None:
        self.argv = argv
        self.operands = operands or []
        self.env = env or {}
        self.excluded = excluded


class Invocation:
    """The agent's complete start: what the launchers run. ``missing_hint``: the hint when
    argv[0] cannot be found (None: the launcher's general one)."""

    __slots__ = ("name", "argv", "env", "excluded", "missing_hint")

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None,
                 excluded: str | None = None, missing_hint: str | None = None) -> None:
        self.name = name
        self.argv = argv
        self.env = env or {}
        self.excluded = excluded
        self.missing_hint = missing_hint


class Verdict:
    """doctor's verdict on an agent (strings, not an enum: see record.State)."""

    OK = "ok"
    NO_LOGIN = "no login"  # installed, but no credentials in sight: a warning
    MISSING = "missing"  # not installed, not found, or no adapter: fails the default agent


class Health:
    """doctor's view of one agent: a verdict, what was seen, and the fix."""

    __slots__ = ("verdict", "detail", "fix")

    def __init__(self, verdict: str, detail: str, fix: str | None = None) -> None:
        self.verdict = verdict
        self.detail = detail
        self.fix = fix


class Login:
    """Where an agent CLI keeps a login: any one present means logged in: ``files`` (~ and
    $VAR expanded; skipped when $VAR is unset), or ``env`` (variables)."""

    __slots__ = ("files", "env")

    def __init__(self, files: tuple[str, ...] = (), env: tuple[str, ...] = ()) -> None:
        self.files = files
        self.env = env

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


class Cli(ABC):
    """An agent that is a CLI on PATH: what every built-in adapter shares. Each subclass
    writes `command`."""

    def __init__(self, *, name: str, program: str, description: str, allows: str,
                 install: str, login: Login, hook: Shipped | None = None) -> None:
        self.name = name
        self.program = program  # on PATH, unless worker.agent.<name>.command replaces it
        self.description = description
        self.allows = allows
        self.install = install  # how to install ``program`` (doctor's fix)
        self.login = login
        self.hook = hook

    @abstractmethod
    def command(self, program: list[str] | None, *, model: str | None,
                ctx: Context) -> Command: ...

    def argv0(self, program: list[str] | None) -> list[str]:
        return list(program) if program else [self.program]

    def health(self, program: list[str] | None, version_of: VersionOf) -> Health:
        if program is not None:
            return command_health(self.name, program, self.allows)
        import shutil  # doctor's alone (with bz2 and lzma: ~3 ms)

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
    import shlex
    import shutil
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
