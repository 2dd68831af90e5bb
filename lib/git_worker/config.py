"""worker.* settings, read the way git reads them.

dulwich 1.2.21 reads config wrongly for us: `get_boolean` rejects yes/on/1/off/no/0,
`config.worktree` comes from the wrong directory with the wrong precedence, and `git -c`
(GIT_CONFIG_PARAMETERS) is ignored. So one `git config --get-regexp` call reads every
worker.* entry, from every scope and include, with its origin; values are then parsed here
with git's own rules. Settings are written only with `git config` (never through dulwich,
which would expand includes into .git/config and drop comments).
"""

from __future__ import annotations

import os

from git_worker import git
from git_worker.errors import GitCommandError, WorkerError

# re and shlex are imported where an integer or a command line is read: what rm and spawn
# read of the settings needs neither (~5 ms of CPU, re's with enum).

TYPE_CHECKING = False
if TYPE_CHECKING:
    from git_worker.repo import Repo

# Plain classes, not dataclasses, here and in what spawn and rm read before their git
# work: `import dataclasses` (it imports inspect) and building the classes cost ~5-15 ms.


class Setting:
    __slots__ = ("key", "default", "kind", "doc")

    def __init__(self, key: str, default: str | None, kind: str, doc: str) -> None:
        self.key = key  # as documented (camelCase); git matches it case-insensitively
        self.default = default
        # "string", "bool", "int", "count" (an int, 0 allowed), "seconds", "multi", "path"
        self.kind = kind
        self.doc = doc


SETTINGS: tuple[Setting, ...] = (
    Setting("worker.baseBranch", None, "string", "base for new workers (default: auto-detect)"),
    Setting("worker.noFetch", "false", "bool", "never fetch a remote-tracking base"),
    Setting("worker.fetchTimeout", "20", "seconds", "seconds a fetch of the base may take"),
    Setting("worker.branchPrefix", "worker/", "string", "branch = prefix + id"),
    Setting("worker.worktreeDir", "../<repo>.workers", "path",
            "where worktrees go, relative to the main worktree"),
    Setting("worker.agent", "claude", "string",
            "agent adapter: claude, codex, aider, gemini, or custom"),
    Setting("worker.model", None, "string", "model passed to the agent (default: the agent's)"),
    Setting("worker.launcher", None, "string", "tmux or detached (default: tmux if present)"),
    Setting("worker.review", "false", "bool", "run the review gate when a worker finishes"),
    Setting("worker.reviewGate", "review-gate", "string", "review command"),
    Setting("worker.reviewTimeout", "3600", "seconds",
            "seconds the review gate may run before it is stopped"),
    Setting("worker.closeOnMerge", "false", "bool",
            "close the tracker issue (bd close) when git worker merge lands a worker"),
    Setting("worker.promptTemplate", None, "path", "prompt template file (default: built-in)"),
    Setting("worker.tracker", None, "string", "bd or none (default: bd if found)"),
    Setting("worker.copy", None, "multi", "globs of untracked files copied into new worktrees"),
    Setting("worker.setup", None, "multi",
            "commands run in a new worktree (shell words, no shell)"),
    Setting("worker.maxConcurrent", None, "int", "running workers at once (default: unlimited)"),
    Setting("worker.teardown", None, "multi",
            "commands run before a worker is removed (shell words, no shell)"),
    Setting("worker.ports", "0", "count", "TCP ports leased to each worker (GIT_WORKER_PORTS)"),
    Setting("worker.portRange", "20000-29999", "string", "where leased ports come from"),
    Setting("worker.trackerTimeout", "30", "seconds", "seconds one bd call may take"),
    Setting("worker.remote", None, "string",
            "the team's remote: the registry is shared there (default: this clone only)"),
    Setting("worker.hostName", "<the machine's name>", "string",
            "this clone's name in the team registry (the HOST column)"),
    Setting("worker.hostId", "<generated>", "string",
            "this clone's id in the team registry, generated once into .git/config"),
    Setting("worker.sshCommand", "ssh", "string",
            "the ssh that reaches worker.host.<name> (shell words, no shell)"),
    Setting("worker.notify", None, "string",
            "command run when a worker waits, is done, exits or fails (shell words, no shell)"),
)
_BY_NAME = {s.key.lower(): s for s in SETTINGS}

_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off", ""}
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# Compiled on first use (re keeps it), not on import: ~1 ms of every spawn, whose numbers
# (the defaults) are plain decimals.
_INT = r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([kKmMgG]?)\Z"


class Entry:
    """One `key = value` line as git reported it."""

    __slots__ = ("key", "value", "scope", "origin")

    def __init__(self, key: str, value: str | None, scope: str, origin: str) -> None:
        self.key = key  # section and variable lowercased by git, subsection kept
        self.value = value  # None for a bare `key` line, which git reads as true
        self.scope = scope  # system, global, local, worktree, command
        self.origin = origin  # file:<path>, command line:, blob:…


def parse_int(text: str) -> int | None:
    """git's integer syntax (git_parse_int): strtoimax base 0 — leading blanks, a sign,
    0x hex or 0 octal — then an optional k/m/g unit, and the result must fit an int."""
    if text.isascii() and text.isdigit() and (text == "0" or text[0] != "0"):
        number = int(text)  # plain decimal (every default): no pattern to compile
        return number if number < 2**31 else None
    import re

    m = re.match(_INT, text)
    if m is None:
        return None
    sign, digits, unit = m.groups()
    if digits[:2].lower() == "0x":
        number = int(digits[2:], 16)
    else:
        number = int(digits, 8 if len(digits) > 1 and digits[0] == "0" else 10)
    value = (-number if sign == "-" else number) * _UNITS[unit.lower()]
    return value if -(2**31) <= value < 2**31 else None


def parse_bool(value: str | None) -> bool | None:
    """git's boolean syntax (git_parse_maybe_bool); None when it is not a boolean."""
    if value is None:
        return True
    v = value.lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    number = parse_int(v)
    return None if number is None else number != 0




class Config:
    """Every worker.* entry, in git's order (later wins)."""

    def __init__(self, entries: list[Entry] | None = None, *,
                 checkout_workers_set: bool = False) -> None:
        self.entries = [] if entries is None else entries
        # Whether git's checkout.workers is set (read with the settings: spawn chooses a
        # parallel checkout only when the user did not choose, and asks no second git).
        self.checkout_workers_set = checkout_workers_set

    @classmethod
    def load(cls, common_dir: str | None = None) -> Config:
        """The settings of the repository whose git directory is ``common_dir``: system,
        global, ``common_dir``'s own config and ``git -c`` — never a linked worktree's.

        A worker's worktree is the agent's to write, its `.git` file included: git run
        there would read whatever repository that file names (or a `.git` directory put
        in its place), and its config.worktree. So settings that decide a review, a merge
        or what runs come from the common dir alone. ``None``: wherever git finds itself
        from the current directory (for `git worker config` and `doctor` outside a repo).
        """
        return cls.read(cls.start_load(common_dir))

    @staticmethod
    def start_load(common_dir: str | None = None) -> git.Running:
        """load(), begun: git reads the settings while the caller does something else;
        read() then waits for them."""
        # `git config` rather than dulwich: see the module docstring.
        return git.start_config_with_origins(git.SETTINGS, common_dir)

    @staticmethod
    def start_load_here() -> git.Running | None:
        """load(), begun before the repository is known (beside its discovery):
        read_here() then takes the answer if it is what load() would have given."""
        return git.start_config_here(git.SETTINGS)

    @classmethod
    def read_here(cls, loading: git.Running, repo: Repo) -> Config | None:
        """The settings start_load_here() asked for, if they are exactly load(``repo``'s
        common dir)'s — in the main worktree —, else None (read them with load())."""
        found = git.config_output_here(loading, repo.git_dir, repo.common_dir,
                                       repo.cwd_worktree)
        return None if found is None else cls._parsed(found)

    @classmethod
    def read(cls, loading: git.Running) -> Config:
        """The settings start_load() asked git for."""
        try:
            found = git.config_output(loading)
        except GitCommandError as e:
            raise WorkerError(f"cannot read git config: {e.stderr.strip()}",
                              hint="fix the file git names") from None
        return cls._parsed(found)

    @classmethod
    def _parsed(cls, found: bytes) -> Config:
        entries = _parse_entries(found)
        ours = [e for e in entries if e.key.startswith("worker.")]
        return cls(ours, checkout_workers_set=len(ours) < len(entries))

    def _all(self, key: str) -> list[Entry]:
        k = _normalize(key)
        return [e for e in self.entries if _normalize(e.key) == k]

    def entry(self, key: str) -> Entry | None:
        found = self._all(key)
        return found[-1] if found else None

    def raw(self, key: str) -> str | None:
        e = self.entry(key)
        if e is None:
            return None
        return "true" if e.value is None else e.value

    def string(self, key: str) -> str | None:
        value = self.raw(key)
        return value if value else None

    def values(self, key: str) -> list[str]:
        return [e.value for e in self._all(key) if e.value]

    def boolean(self, key: str) -> bool:
        e = self.entry(key)
        if e is None:
            return bool(parse_bool(default(key) or "false"))
        parsed = parse_bool(e.value)
        if parsed is None:
            raise _bad(e, "a boolean (true/false, yes/no, on/off, 1/0)")
        return parsed

    def integer(self, key: str, *, minimum: int = 0) -> int | None:
        e = self.entry(key)
        if e is None or e.value is None:
            written = default(key)
            return None if written is None else parse_int(written)
        parsed = parse_int(e.value)
        if parsed is None or parsed < minimum:
            raise _bad(e, f"a whole number of at least {minimum}")
        return parsed

    def seconds(self, key: str) -> float:
        e = self.entry(key)
        if e is None or e.value is None:
            return float(required_default(key))
        try:
            parsed = float(e.value)
        except ValueError:
            parsed = -1.0
        if not 0 < parsed <= 86400:  # also refuses inf and nan
            raise _bad(e, "a number of seconds greater than 0, at most 86400 (a day)")
        return parsed

    def words(self, key: str) -> list[str] | None:
        """A command line kept in config, split like a shell would (but run without one)."""
        import shlex

        e = self.entry(key)
        if e is None or not e.value:
            return None
        try:
            argv = shlex.split(e.value)
        except ValueError as err:
            raise _bad(e, f"shell words ({err})") from None
        return argv or None

    def validate(self) -> None:
        """Parse every known setting now, so a bad value fails before anything is made."""
        for setting in SETTINGS:
            if setting.kind == "bool":
                self.boolean(setting.key)
            elif setting.kind == "int":
                self.integer(setting.key, minimum=1)
            elif setting.kind == "seconds":
                self.seconds(setting.key)
        self.branch_prefix  # noqa: B018 (validates)

    # --- the settings by name ---------------------------------------------------------

    @property
    def no_fetch(self) -> bool:
        return self.boolean("worker.noFetch")

    @property
    def fetch_timeout(self) -> float:
        return self.seconds("worker.fetchTimeout")

    @property
    def review_timeout(self) -> float:
        return self.seconds("worker.reviewTimeout")

    @property
    def tracker_timeout(self) -> float:
        return self.seconds("worker.trackerTimeout")

    @property
    def agent(self) -> str:
        return self.string("worker.agent") or required_default("worker.agent")

    @property
    def review_gate(self) -> list[str]:
        import shlex

        key = "worker.reviewGate"
        return self.words(key) or shlex.split(required_default(key))

    @property
    def ssh_command(self) -> list[str]:
        import shlex

        key = "worker.sshCommand"
        return self.words(key) or shlex.split(required_default(key))

    @property
    def ports(self) -> int:
        count = self.integer("worker.ports", minimum=0)
        assert count is not None  # SETTINGS gives it a default
        return count

    @property
    def branch_prefix(self) -> str:
        prefix = self.raw("worker.branchPrefix")
        if prefix is None:
            return required_default("worker.branchPrefix")
        from git_worker import refnames

        if not refnames.valid(f"refs/heads/{prefix}x") or prefix.startswith("-"):
            raise _bad(self.entry("worker.branchPrefix"), "a prefix that makes valid branch names")
        return prefix

    @property
    def review(self) -> bool:
        return self.boolean("worker.review")

    @property
    def max_concurrent(self) -> int | None:
        return self.integer("worker.maxConcurrent", minimum=1)


def _normalize(key: str) -> str:
    """git compares section and variable names case-insensitively, subsections exactly."""
    first, _, rest = key.partition(".")
    middle, _, last = rest.rpartition(".")
    if not middle:
        return f"{first.lower()}.{last.lower()}"
    return f"{first.lower()}.{middle}.{last.lower()}"


def _bad(entry: Entry | None, wanted: str) -> WorkerError:
    assert entry is not None
    where = entry.origin.removeprefix("file:").rstrip(":") or entry.scope
    if os.path.isabs(where):  # read through the common dir: shown as git would show it
        try:
            relative = os.path.relpath(where)
        except OSError:  # the current directory may be gone
            relative = ".."
        where = where if relative.startswith("..") else relative
    return WorkerError(
        f"bad value '{entry.value}' for {entry.key} in {where}: expected {wanted}",
        hint=f"fix it with: git config --{entry.scope} {entry.key} <value>"
        if entry.scope in ("system", "global", "local", "worktree")
        else f"fix the -c {entry.key}=… option",
    )


def _parse_entries(data: bytes) -> list[Entry]:
    fields = data.decode(errors="surrogateescape").split("\0")
    entries = []
    # Records are: scope NUL origin NUL key [LF value] NUL
    for i in range(0, len(fields) - 2, 3):
        scope, origin, item = fields[i], fields[i + 1], fields[i + 2]
        key, newline, value = item.partition("\n")
        entries.append(Entry(key, value if newline else None, scope, origin))
    return entries


def known(key: str) -> Setting | None:
    return _BY_NAME.get(key.lower())


def default(key: str) -> str | None:
    """What SETTINGS says ``key`` is when unset: the one place a default is written (None:
    no default, or not a setting SETTINGS knows, such as worker.agent.NAME.command)."""
    setting = known(key)
    return None if setting is None else setting.default


def required_default(key: str) -> str:
    """default(), for a setting SETTINGS gives one."""
    written = default(key)
    assert written is not None, f"SETTINGS gives {key} no default"
    return written
