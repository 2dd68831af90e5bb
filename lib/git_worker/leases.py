"""Per-worker resources that never collide: leased TCP ports and a slot number.

Every worker gets a slot (a small integer, GIT_WORKER_SLOT) and `worker.ports` TCP ports on
127.0.0.1 (GIT_WORKER_PORT, GIT_WORKER_PORTS), unique among the live workers of every
repository of this user on this machine. A port is leased only when nothing holds it: it
is bound (and let go) first.

One store per user, `$XDG_STATE_HOME/git-worker/leases.json` (default
`~/.local/state/git-worker/`), private (directory 0700, file 0600), read and written only
under an flock on `leases.lock` beside it. A lease names the repository's common dir, the
worker id and the record's `created_at`: that repository's registry proves whether the
worker still exists, so the leases of a worker that is gone (its spawner killed, its record
dropped, its repository deleted) are reclaimed by the next lease and by `fsck --repair`.
A registry that cannot be read proves nothing: its leases are kept (unknown is not gone).

The worker's environment (for `worker.setup`, `worker.teardown`, the agent and the gates)
is `environment()`: the leased values and the `worker.env.<name>` templates built from them.
"""

from __future__ import annotations

import errno
import os

from git_worker import compact_json, locks, refnames
from git_worker.errors import WorkerError
from git_worker.git import clean_env
from git_worker.registry import store
from git_worker.registry.record import RECORD_FILE, Corrupt, Record
from git_worker.registry.runtime import RuntimeDir
from git_worker.registry.store import Entry
from git_worker.repo import Repo

# re, shlex and subprocess are imported where a template is filled or a command run (and
# the lease store is read and written by compact_json, without json): rm needs none of them.

# typing only for annotations: list imports this module for its Listeners, and importing
# config and undo (dataclasses) would cost it ~15 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from git_worker.config import Config
    from git_worker.config import Entry as ConfigEntry
    from git_worker.undo import UndoLog

STORE_DIR = "git-worker"  # under $XDG_STATE_HOME
STORE_FILE = "leases.json"
ENV_PREFIX = "worker.env."
_STORE_VERSION = 1
_TEMPLATE = r"\{\{|\}\}|\{([A-Za-z0-9_]*)\}|[{}]"  # compiled (re caches it) where used


class Held:
    """One worker's leases, as the store keeps them."""

    def __init__(self, repository: str, worker: str, created_at: str, ports: list[int],
                 slot: int, record: str | None = None) -> None:
        self.repository = repository  # the repository's common dir (real path)
        self.worker = worker
        self.created_at = created_at  # the record's: a namesake spawned later is not this one
        self.ports = ports
        self.slot = slot
        # The registry commit the worker was last found at, its record this lease's (None:
        # not looked at yet). A commit never changes: while the worker's ref stays there,
        # the worker is there, and its record need not be read again (see _gone_in).
        self.record = record

    def as_dict(self) -> dict[str, object]:
        return {"repository": self.repository, "worker": self.worker,
                "created_at": self.created_at, "ports": self.ports, "slot": self.slot,
                "record": self.record}

    def describe(self) -> str:
        return _describe(self.slot, self.ports)

    def is_of(self, common_dir: str, record: Record) -> bool:
        return (self.worker, self.created_at) == (record.id, record.created_at) and \
            self.repository == os.path.realpath(common_dir)


# --- the settings ---------------------------------------------------------------------


def port_count(config: Config) -> int:
    return config.ports


def port_range(config: Config) -> tuple[int, int]:
    """worker.portRange; its default (config.SETTINGS) is below Linux's ephemeral ports
    (32768-60999), which the kernel hands out to outgoing connections."""
    from git_worker.config import default

    raw = config.raw("worker.portRange") or default("worker.portRange") or ""
    # "LOW-HIGH", blanks around either: split by hand (`import re` costs every spawn ~2 ms).
    low_text, dash, high_text = (part.strip() for part in raw.partition("-"))
    numbers = dash and all(t.isdecimal() and len(t) <= 5 for t in (low_text, high_text))
    low, high = (int(low_text), int(high_text)) if numbers else (0, 0)
    if not 1 <= low <= high <= 65535:
        raise _bad(config.entry("worker.portRange"),
                   "a range of TCP ports LOW-HIGH within 1-65535, e.g. 20000-29999")
    return low, high


def templates(config: Config) -> dict[str, tuple[str, ConfigEntry]]:
    """`worker.env.<name>` → {VARIABLE: (template, entry)}.

    git allows only letters, digits and '-' in a variable's name and folds it to lower
    case, so `worker.env.database-url` names DATABASE_URL: upper case, '-' becomes '_'.
    """
    found: dict[str, tuple[str, ConfigEntry]] = {}
    for e in config.entries:
        if not e.key.lower().startswith(ENV_PREFIX) or e.key.count(".") != 2:
            continue
        name = e.key[len(ENV_PREFIX):].upper().replace("-", "_")
        if name.startswith("GIT_WORKER_"):
            raise _bad(e, "a variable of your own: GIT_WORKER_* are set by git-worker")
        found[name] = ("" if e.value is None else e.value, e)
    return found


def validate(config: Config) -> None:
    """Check worker.ports, worker.portRange and every worker.env template before anything
    is created (a template is rendered here with the values a worker will have)."""
    count = port_count(config)
    low, high = port_range(config)
    if count > high - low + 1:
        raise _bad(config.entry("worker.ports"),
                   f"at most the {high - low + 1} port(s) of worker.portRange {low}-{high}")
    _render_all(config, _values("x", list(range(low, low + count)), 1))


# --- the environment ------------------------------------------------------------------


def environment(config: Config, record: Record) -> dict[str, str]:
    """The worker's leased values as environment variables, with the `worker.env.<name>`
    variables built from them: what setup, teardown, the agent and the gates see."""
    ports = leased_ports(record)
    slot = (record.leases or {}).get("slot")
    if isinstance(slot, bool):
        slot = None
    env = {}
    if isinstance(slot, int):
        env["GIT_WORKER_SLOT"] = str(slot)
    if ports:
        env["GIT_WORKER_PORT"] = str(ports[0])
        env["GIT_WORKER_PORTS"] = " ".join(map(str, ports))
    env.update(_render_all(config, _values(record.id, ports,
                                           slot if isinstance(slot, int) else None)))
    return env


def describe(record: Record) -> str:
    """What a record holds, for people: "slot 3, ports 20004 20005"."""
    return _describe((record.leases or {}).get("slot"), leased_ports(record))


def _describe(slot: object, ports: list[int]) -> str:
    shown = " ".join(map(str, ports))
    return f"slot {slot}" + (f", ports {shown}" if shown else "")


def leased_ports(record: Record) -> list[int]:
    """The ports the record says it holds (a record is untrusted: only numbers count)."""
    ports = (record.leases or {}).get("ports")
    if not isinstance(ports, list):
        return []
    return [p for p in ports if isinstance(p, int) and not isinstance(p, bool)]


def _values(worker_id: str, ports: list[int], slot: int | None) -> dict[str, str]:
    values = {"id": worker_id}
    if slot is not None:
        values["slot"] = str(slot)
    if ports:
        values["port"] = str(ports[0])
        values["ports"] = " ".join(map(str, ports))
        values.update({f"port{n}": str(p) for n, p in enumerate(ports, 1)})
    return values


def _render_all(config: Config, values: dict[str, str]) -> dict[str, str]:
    return {name: _render(text, entry, values)
            for name, (text, entry) in templates(config).items()}


def _render(text: str, entry: ConfigEntry, values: dict[str, str]) -> str:
    """`{port}`, `{ports}`, `{port1}`…, `{slot}`, `{id}`; `{{` and `}}` are braces."""
    import re

    def substitute(m: re.Match[str]) -> str:
        token = m[0]
        if token in ("{{", "}}"):
            return token[0]
        name = m[1]
        if name is None:
            raise _bad(entry, "a template whose braces pair up ({{ and }} for literal ones)")
        if name not in values:
            known = " ".join(f"{{{k}}}" for k in values)
            if re.fullmatch(r"port\d*|ports", name):
                raise _bad(entry, f"a template within the leased ports: {{{name}}} needs more "
                                  f"ports than worker.ports gives (known: {known})")
            raise _bad(entry, f"a template of known placeholders; {{{name}}} is none "
                              f"(known: {known})")
        return values[name]

    return re.sub(_TEMPLATE, substitute, text)


def _bad(entry: ConfigEntry | None, wanted: str) -> WorkerError:
    """config's message for a bad value, naming the setting and where it is set."""
    if entry is None:
        return WorkerError(f"bad setting: expected {wanted}")
    where = entry.origin.removeprefix("file:").rstrip(":") or entry.scope
    return WorkerError(
        f"bad value '{entry.value}' for {entry.key} in {where}: expected {wanted}",
        hint=f"fix it with: git config --{entry.scope} {entry.key} <value>"
        if entry.scope in ("system", "global", "local", "worktree")
        else f"fix the -c {entry.key}=… option",
    )


# --- leasing and giving back ----------------------------------------------------------


def take(repo: Repo, config: Config, record: Record, undo: UndoLog) -> dict[str, Any]:
    """Spawn's lease step: lease the slot and ports, push their return on ``undo``; returns
    what the record keeps in `leases` (spawn writes it with its next commit)."""
    ports, slot = acquire(repo.common_dir, record, count=port_count(config),
                          port_range=port_range(config))
    undo.push("leases", lambda: release(repo.common_dir, record))
    return {"ports": ports, "slot": slot}


def acquire(common_dir: str, record: Record, *, count: int,
            port_range: tuple[int, int]) -> tuple[list[int], int]:
    """Lease a slot and ``count`` free ports for ``record`` (already claimed: its record
    must exist, or the next lease would find this one stale)."""
    with _Store() as held:
        _drop_gone(held)
        mine = [h for h in held if h.is_of(common_dir, record)]
        if mine:  # leased already (e.g. a re-run of this spawn's step)
            return mine[0].ports, mine[0].slot
        slots = {h.slot for h in held}
        slot = next(n for n in range(1, len(slots) + 2) if n not in slots)
        ports = _free_ports(count, port_range, {p for h in held for p in h.ports})
        held.append(Held(os.path.realpath(common_dir), record.id, record.created_at, ports, slot))
        return ports, slot


def release(common_dir: str, record: Record) -> bool:
    """Give back what ``record`` holds. False when it held nothing."""
    if not os.path.exists(os.path.join(state_dir(), STORE_FILE)):
        return False
    with _Store() as held:
        kept = [h for h in held if not h.is_of(common_dir, record)]
        gave = len(kept) != len(held)
        held[:] = kept
    return gave


def release_quietly(common_dir: str, record: Record) -> None:
    """release(), for a worker that is gone already: a store that cannot be written now
    only delays the return (the lease is stale, and the next lease reclaims it)."""
    try:
        release(common_dir, record)
    except (WorkerError, OSError):
        pass


def gone(repo: Repo, entries: list[store.Entry | Corrupt] | None = None) -> list[Held]:
    """The leases held for workers of this repository that no longer exist.

    Its registry is read once (two git processes), not once a lease: fsck asks this of
    a repository that may have a thousand workers, and hands it the ``entries`` it has
    read (every record) when it has them."""
    if not os.path.exists(os.path.join(state_dir(), STORE_FILE)):
        return []
    here = os.path.realpath(repo.common_dir)
    with _Store() as held:
        mine = [h for h in held if h.repository == here]
        if not mine:
            return []
        try:
            found = {e.id if isinstance(e, Corrupt) else e.record.id: e
                     for e in (store.all_entries(repo) if entries is None else entries)}
        except WorkerError:
            return []  # can't tell: keep them all
        return [h for h in mine if _proves_gone(h, found.get(h.worker))]


def give_back(lease: Held) -> list[str]:
    """Drop ``lease`` from the store if its worker is still gone (checked again, locked)."""
    with _Store() as held:
        still = [h for h in held if h.as_dict() == lease.as_dict() and _is_gone(h)]
        held[:] = [h for h in held if h not in still]
    return [f"gave back {lease.describe()}"] if still else []


def _drop_gone(held: list[Held]) -> None:
    """Drop the leases whose workers are gone: per repository, its registry refs read from
    their files, and the records whose refs moved since they were last read in one
    `git cat-file --batch` (no git process at all when none moved) — not every record
    every time, which made each spawn cost ~0.15 s with 1,000 workers on the machine
    (measured), nor a dulwich object read per lease (~1 s)."""
    by_repository: dict[str, list[Held]] = {}
    for h in held:
        by_repository.setdefault(h.repository, []).append(h)
    gone: set[int] = set()
    for path, leases in by_repository.items():
        gone.update(id(h) for h in _gone_in(path, leases))
    held[:] = [h for h in held if id(h) not in gone]


def _gone_in(path: str, leases: list[Held]) -> list[Held]:
    """Those of ``leases`` (all of the repository at ``path``) whose worker is gone."""
    if not os.path.isdir(path):
        return leases  # the repository itself was deleted
    try:
        repo = Repo(path, path, path, None)
        oids = {h.worker: repo.read_ref(refnames.registry(h.worker)) for h in leases}
        moved = sorted({h.worker for h in leases if oids[h.worker] not in (None, h.record)})
        blobs = repo.read_objects([f"{oids[w]}:{RECORD_FILE}" for w in moved], alone=True)
    except (WorkerError, OSError, ValueError, KeyError):
        return []  # can't tell: keep them
    found: dict[str, Entry | Corrupt] = {}
    for worker, blob in zip(moved, blobs, strict=True):
        found[worker] = store.parse(worker, str(oids[worker]), blob[1]) \
            if blob is not None and blob[0] == "blob" else \
            Corrupt(worker, str(oids[worker]), "unreadable")
    gone = []
    for h in leases:
        oid = oids[h.worker]
        if oid is not None and oid == h.record:
            continue  # where it was last found, with this lease's record
        entry = found.get(h.worker)
        if _proves_gone(h, entry):
            gone.append(h)
        elif isinstance(entry, Entry):
            h.record = oid  # found, its record this lease's: not read again until it moves
    return gone


def _is_gone(lease: Held) -> bool:
    """Proven by the lease's repository: its worker no longer exists."""
    return bool(_gone_in(lease.repository, [lease]))


def _proves_gone(lease: Held, found: Entry | Corrupt | None) -> bool:
    """Whether ``found``, what the registry holds under the lease's worker id, proves the
    worker gone: no record, or the record of a namesake spawned since."""
    if found is None:
        return True
    if isinstance(found, Corrupt):
        return False
    return found.record.created_at != lease.created_at


def _free_ports(count: int, port_range: tuple[int, int], leased: set[int]) -> list[int]:
    low, high = port_range
    ports: list[int] = []
    busy = 0
    for port in range(low, high + 1):
        if len(ports) == count:
            break
        if port in leased:
            continue
        if _bindable(port):
            ports.append(port)
        else:
            busy += 1
    if len(ports) < count:
        raise WorkerError(
            f"no {count} free port(s) in worker.portRange {low}-{high}: "
            f"{len(leased & set(range(low, high + 1)))} leased to other workers, "
            f"{busy} in use by other processes",
            hint="remove workers you no longer need (git worker rm ID), or widen the range: "
                 "git config worker.portRange LOW-HIGH")
    return ports


def _bindable(port: int) -> bool:
    """Whether a listener could take ``port`` on 127.0.0.1 right now."""
    import socket  # only when ports are leased: ~2 ms of every spawn before its checkout

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                return False
            raise
    return True


# --- the store ------------------------------------------------------------------------


def state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or ""
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, STORE_DIR)


class _Store:
    """The leases, locked, for a with block (``with _Store() as held``); what the block
    leaves in the list is written back. A class, not contextlib.contextmanager: see
    locks.Flock."""

    def __enter__(self) -> list[Held]:
        directory = self.directory = state_dir()
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            info = os.stat(directory)
            if info.st_uid != os.geteuid():
                raise WorkerError(f"the lease store {directory} belongs to another user",
                                  hint="point XDG_STATE_HOME at a directory of your own")
            if info.st_mode & 0o077:
                os.chmod(directory, 0o700)
        except OSError as e:
            raise _unusable(directory, e) from None
        self.lock = locks.lease_store(directory)
        try:
            self.lock.__enter__()
        except OSError as e:  # e.g. ENOLCK on a network file system without locks
            raise _unusable(directory, e) from None
        try:
            self.path = os.path.join(directory, STORE_FILE)
            self.held = _read(self.path)
        except BaseException:
            self.lock.__exit__()
            raise
        self.before = [h.as_dict() for h in self.held]
        return self.held

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            if kind is None and [h.as_dict() for h in self.held] != self.before:
                try:
                    _write(self.path, self.held)
                except OSError as e:  # e.g. a full disk: the store is as it was
                    raise _unusable(self.directory, e) from None
        finally:
            self.lock.__exit__()


def _unusable(directory: str, e: OSError) -> WorkerError:
    return WorkerError(f"cannot use the lease store {directory}: {e.strerror or e}",
                       hint="make it writable (and free some space), or point "
                            "XDG_STATE_HOME elsewhere")


def _read(path: str) -> list[Held]:
    # compact_json: json's answers and errors without importing json (and re): ~3 ms of
    # every rm and spawn that gives back or takes a lease.
    try:
        with open(path, encoding="utf-8") as f:
            data = compact_json.loads(f.read())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise WorkerError(f"the lease store {path} is unreadable ({e})",
                          hint="look at it; deleting it forgets every lease (ports in use "
                               "are still never leased)") from None
    try:
        return [Held(str(h["repository"]), str(h["worker"]), str(h["created_at"]),
                     [int(p) for p in h["ports"]], int(h["slot"]), _oid_or_none(h.get("record")))
                for h in data["leases"]]
    except (KeyError, TypeError, ValueError) as e:
        raise WorkerError(f"the lease store {path} is not what git-worker wrote ({e!r})",
                          hint="look at it; deleting it forgets every lease") from None


def _oid_or_none(value: object) -> str | None:
    """A lease's `record` as the store holds it: an OID, or None (absent, as an earlier
    version wrote it, or anything else: then the record is read again)."""
    if isinstance(value, str) and len(value) == 40 and not value.strip("0123456789abcdef"):
        return value
    return None


def _write(path: str, held: list[Held]) -> None:
    """Replace the store whole (readers hold the lock, but a crash must not leave half)."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        # One lease a line, each written compactly by the C encoder: json.dump with an
        # indent is pure Python, ~0.1 s of every spawn's and rm's CPU with 1,000 leases.
        lines = ",\n".join(compact_json.dumps(h.as_dict()) for h in held)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f'{{"version": {_STORE_VERSION}, "leases": [\n{lines}\n]}}\n')
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- teardown -------------------------------------------------------------------------


def teardown(repo: Repo, config: Config, record: Record, *, force: bool) -> list[str]:
    """Run `worker.teardown` for ``record`` before it is removed: in its worktree (the
    main worktree if it is gone), with the worker's environment. A failing command raises,
    unless ``force``: then the rest still run, and the failures come back as notes.
    (It runs before the removal: a removal that fails later, e.g. a branch that moved,
    leaves a worker whose teardown has run; `rm` runs it again next time.)"""
    commands = config.values("worker.teardown")
    if not commands:
        return []
    cwd = record.worktree if os.path.isdir(record.worktree) else repo.main_worktree
    try:
        leased = environment(config, record)
    except WorkerError as e:  # a worker.env template: its message names the setting
        if not force:
            raise
        return [f"worker.teardown did not run ({e.message}); removing it anyway (--force)"]
    env = clean_env({"GIT_WORKER_ID": record.id, "GIT_WORKER_BRANCH": record.branch,
                     "GIT_WORKER_WORKTREE": record.worktree,
                     "GIT_WORKER_BASE": str(record.base.get("name"))} | leased)
    runtime = RuntimeDir.of(repo, record.id)
    os.makedirs(runtime.path, exist_ok=True)
    log_path = runtime.teardown_log
    notes = []
    for command in commands:
        failure = _run_logged(command, cwd, env, log_path)
        if failure is None:
            continue
        if not force:
            raise WorkerError(f"refusing to remove '{record.id}': {failure}",
                              hint="fix what it reports and run git worker rm again, or pass "
                                   "--force to remove the worker all the same")
        notes.append(f"{failure}; removing it anyway (--force)")
    return notes


def _run_logged(command: str, cwd: str, env: dict[str, str], log_path: str) -> str | None:
    """Run one teardown command; None when it succeeded, else what went wrong."""
    import shlex
    import subprocess

    try:
        argv = shlex.split(command)
    except ValueError as e:
        return f"worker.teardown '{command}' is not valid shell words: {e}"
    with open(log_path, "ab") as log:
        log.write(f"$ {command}\n".encode())
        log.flush()
        start = log.tell()
        try:
            code = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, check=False).returncode
        except OSError as e:
            return f"teardown command '{command}' cannot run: {e.strerror}"
    if code == 0:
        return None
    with open(log_path, "rb") as f:
        f.seek(start)
        output = f.read().decode(errors="replace").rstrip()
    tail = "\n".join(output.splitlines()[-10:])
    return f"teardown command '{command}' failed (exit {code})" + (f":\n{tail}" if tail else "")


# --- who holds a leased port (for list) -----------------------------------------------


class Listeners:
    """The TCP listeners of this machine, read from /proc once per command, and only when
    a worker holds ports; which process owns one is looked up only for a leased port."""

    def __init__(self) -> None:
        self._ports: dict[int, set[int]] | None = None  # port → socket inodes
        self._owners: dict[int, int] | None = None  # inode → pid

    def problems(self, common_dir: str, record: Record) -> list[str]:
        found = []
        for port in leased_ports(record):
            inodes = self.ports().get(port)
            if not inodes:
                continue
            pids = {pid for inode in inodes if (pid := self.owner(inode)) is not None}
            if pids and any(_belongs(pid, common_dir, record) for pid in pids):
                continue
            who = ", ".join(f"pid {pid} ({_command(pid)})" for pid in sorted(pids)) \
                or "a process of another user"
            found.append(f"port {port}, leased to this worker, is taken by {who}, which is "
                         "not the worker's")
        return found

    def ports(self) -> dict[int, set[int]]:
        if self._ports is None:
            self._ports = {}
            for table in ("/proc/net/tcp", "/proc/net/tcp6"):
                try:
                    with open(table, encoding="ascii") as f:
                        lines = f.read().splitlines()[1:]
                except OSError:
                    continue
                for line in lines:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == "0A":  # LISTEN
                        port = int(fields[1].rsplit(":", 1)[1], 16)
                        self._ports.setdefault(port, set()).add(int(fields[9]))
        return self._ports

    def owner(self, inode: int) -> int | None:
        if self._owners is None:
            self._owners = {}
            for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
                fd_dir = f"/proc/{pid}/fd"
                try:
                    for fd in os.listdir(fd_dir):
                        target = os.readlink(f"{fd_dir}/{fd}")
                        if target.startswith("socket:["):
                            self._owners[int(target[8:-1])] = pid
                except OSError:
                    continue  # gone, or another user's
        return self._owners.get(inode)


def _belongs(pid: int, common_dir: str, record: Record) -> bool:
    """A process of the worker: it runs in its worktree, or carries its environment."""
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
        if cwd == record.worktree or cwd.startswith(record.worktree.rstrip("/") + "/"):
            return True
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = set(f.read().split(b"\0"))
    except OSError:
        return False
    if f"GIT_WORKER_ID={record.id}".encode() not in env:
        return False
    return (f"GIT_WORKER_WORKTREE={record.worktree}".encode() in env
            or f"GIT_WORKER_COMMON_DIR={common_dir}".encode() in env)


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return "?"

