"""Other hosts, reached with OpenSSH: `git worker` run in a clone of the team's remote there.

    git config worker.host.box.ssh ann@box.example.com
    git config worker.host.box.path /srv/repo

ssh runs non-interactively — BatchMode (never a password, passphrase or host-key prompt),
a connect timeout — and one connection serves every call of one command (ControlMaster,
with its socket in a private temporary directory, closed when the command ends). Failures
are classified like fetch failures: the host unreachable, authentication refused,
git-worker missing there or of an incompatible version (checked by the first call of a
command to a host), the repository missing there.
"""

from __future__ import annotations

import os

from git_worker import __version__
from git_worker.config import Config
from git_worker.errors import WorkerError

# subprocess and shlex are imported where ssh is run: `rm` and the other commands that
# only ask whether any host is configured do not pay for them (~5 ms of CPU).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Sequence

UNREACHABLE, AUTH, NO_GIT_WORKER, INCOMPATIBLE, NO_REPOSITORY = (
    "host unreachable", "authentication", "git-worker missing", "git-worker incompatible",
    "repository missing")
_SSH_FAILED = 255  # ssh's own exit status: it could not connect or log in
# What the remote preamble exits with (see _remote_command), and what each means.
_PREAMBLE: dict[int, str] = {201: NO_REPOSITORY, 202: NO_REPOSITORY, 203: NO_GIT_WORKER,
                             204: INCOMPATIBLE}
CONTROL_PERSIST = 60  # seconds the shared connection outlives its last use


class Host:
    def __init__(self, name: str, destination: str, path: str) -> None:
        self.name = name
        self.destination = destination  # worker.host.<name>.ssh: [user@]box
        self.path = path  # worker.host.<name>.path: the clone there


class HostError(WorkerError):
    """ssh could not run git-worker on a host; ``kind`` is one of the classes above."""

    def __init__(self, host: Host, kind: str, detail: str) -> None:
        self.kind = kind
        hints = {
            UNREACHABLE: f"check that {host.destination} is up and reachable (ssh "
                         f"{host.destination})",
            AUTH: f"ssh runs without prompts: load your key (ssh-add) or add it to "
                  f"{host.destination}'s authorized_keys; accept its host key once by hand",
            NO_GIT_WORKER: f"install git-worker on {host.name} (on the PATH of a "
                           "non-interactive ssh session)",
            INCOMPATIBLE: f"install git-worker {__version__} on {host.name}",
            NO_REPOSITORY: f"clone the team's remote to {host.path} on {host.name}, or fix "
                           f"git config worker.host.{host.name}.path",
        }
        super().__init__(f"host {host.name} ({host.destination}): {kind}: {detail}",
                         hint=hints.get(kind))


def configured(config: Config) -> dict[str, Host]:
    """Every host with both settings, by name (in the order git reports them)."""
    found: dict[str, dict[str, str]] = {}
    for entry in config.entries:
        section, _, rest = entry.key.partition(".")
        name, _, variable = rest.rpartition(".")
        if section.lower() == "worker" and name.startswith("host.") and entry.value:
            found.setdefault(name[len("host."):], {})[variable.lower()] = entry.value
    return {n: Host(n, v["ssh"], v["path"]) for n, v in found.items()
            if "ssh" in v and "path" in v}


def get(config: Config, name: str) -> Host:
    hosts = configured(config)
    if name not in hosts:
        known = ", ".join(hosts) or "none"
        raise WorkerError(f"no host '{name}' (configured: {known})",
                          hint=f"git config worker.host.{name}.ssh USER@BOX and "
                               f"git config worker.host.{name}.path /path/to/clone")
    return hosts[name]


class Session:
    """ssh with one shared connection per host, for the calls of one command."""

    def __init__(self, config: Config, control_dir: str) -> None:
        self.base = config.ssh_command
        self.timeout = config.fetch_timeout
        self.control_dir = control_dir
        self.used: list[Host] = []  # connected; its git-worker's version checked

    def _argv(self, host: Host, command: str, *, tty: bool = False) -> list[str]:
        return [*self.base, "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={max(1, int(self.timeout))}",
                "-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_dir}/%C",
                "-o", f"ControlPersist={CONTROL_PERSIST}",
                "-t" if tty else "-T", "--", host.destination, command]

    def run(self, host: Host, args: Sequence[str], *, capture: bool = False,
            tty: bool = False, timeout: float | None = None, git: bool = False,
            ) -> subprocess.CompletedProcess[bytes]:
        """`git worker ARGS` (with ``git``: `git ARGS`) in ``host``'s clone. Its output goes
        to ours unless ``capture``; raises HostError when it could not be run there."""
        import subprocess

        # The first call to a host checks its git-worker's version too (in the same shell
        # line: no round trip of its own).
        argv = self._argv(host, _remote_command(host.path, args, git=git,
                                                check_version=host not in self.used), tty=tty)
        if host not in self.used:
            self.used.append(host)
        pipe = subprocess.PIPE if capture else None
        try:
            proc = subprocess.run(argv, stdin=None if tty else subprocess.DEVNULL,
                                  stdout=pipe, stderr=subprocess.PIPE, timeout=timeout,
                                  check=False)
        except FileNotFoundError:
            raise WorkerError(f"{self.base[0]} is not on PATH",
                              hint="install OpenSSH's client (ssh)") from None
        except subprocess.TimeoutExpired:
            raise HostError(host, UNREACHABLE, f"no answer in {timeout:g} s") from None
        err = proc.stderr.decode(errors="replace")
        if proc.returncode == _SSH_FAILED:
            raise HostError(host, classify(err), _first_line(err))
        if proc.returncode in _PREAMBLE:
            raise HostError(host, _PREAMBLE[proc.returncode], _preamble_detail(
                proc.returncode, host, err))
        if not capture:
            os.write(2, proc.stderr)  # git-worker's own messages from there
        return proc

    def close(self) -> None:
        """End the shared connections (ControlPersist would keep them a while)."""
        import subprocess

        for host in self.used:
            subprocess.run([*self.base, "-o", f"ControlPath={self.control_dir}/%C",
                            "-O", "exit", host.destination], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    # A with block (see session()): a class, not contextlib.contextmanager (see locks.Flock).
    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        import shutil

        self.close()
        shutil.rmtree(self.control_dir, ignore_errors=True)


def session(config: Config) -> Session:
    """A Session for a with block, its control sockets in a private directory (short: a
    socket path must fit in 108 bytes; and nobody else's to connect to) that goes with it."""
    # Imported here: rm and the other commands that may forward import this module and
    # never need tempfile (with random, bz2, lzma: ~3 ms).
    import tempfile

    control_dir = tempfile.mkdtemp(prefix="gw-ssh-", dir="/tmp")
    try:
        return Session(config, control_dir)
    except BaseException:  # a bad setting (worker.fetchTimeout): no with block to remove it
        os.rmdir(control_dir)
        raise


def compatible(version: str) -> bool:
    """Whether git-worker ``version`` (another host's) speaks this one's protocol: the same
    major.minor (the record's schema and the command lines sent over ssh go with it)."""
    return version.split(".")[:2] == __version__.split(".")[:2]


def _remote_command(path: str, args: Sequence[str], *, git: bool = False,
                    check_version: bool = False) -> str:
    """A POSIX shell line for the login shell there: into the clone, then git worker — each
    step that fails exits with its own status, so the failure can be named. With
    ``check_version``: git-worker there of a compatible version (see compatible), else 204
    with its version line on stderr."""
    import shlex

    same = ".".join(__version__.split(".")[:2])
    version = ('v=$(git worker version 2>/dev/null | head -n 1); case "$v" in '
               f'"git-worker {same}."*) ;; *) echo "$v" >&2; exit 204;; esac; '
               if check_version else "")
    return (f"cd -- {shlex.quote(path)} 2>/dev/null || exit 201; "
            "git rev-parse --git-dir >/dev/null 2>&1 || exit 202; "
            "command -v git-worker >/dev/null 2>&1 || exit 203; " + version
            + ("exec git " if git else "exec git worker ")
            + " ".join(shlex.quote(a) for a in args))


def _preamble_detail(code: int, host: Host, stderr: str) -> str:
    if code == 204:
        there = stderr.strip().splitlines()[-1:] or ["no answer to 'git worker version'"]
        return f"{there[0]} there, git-worker {__version__} here (major.minor must match)"
    return {201: f"{host.path} does not exist there",
            202: f"{host.path} is not a git repository there",
            203: "git-worker is not on the PATH there"}[code]


def classify(stderr: str) -> str:
    """What an ssh failure (exit 255) was: authentication, or the host not reached."""
    text = stderr.lower()
    if any(n in text for n in ("permission denied", "host key verification failed",
                               "too many authentication failures", "no more authentication")):
        return AUTH
    return UNREACHABLE


def _first_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines()
             if ln.strip() and not ln.lower().startswith("warning: permanently added")]
    return lines[-1] if lines else "(no output)"
