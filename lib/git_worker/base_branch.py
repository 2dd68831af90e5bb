"""Which commit a new worker starts from, and whether to fetch it first.

Policy (docs/lifecycle.md, "Base branch and fetching"): `-f/--from` › worker.baseBranch ›
auto-detect.
Auto-detect picks the branch the work will land in, as it is now: `origin/HEAD` names the
project's main line, but git-worker lands into the *local* branch that tracks it (merges
are local; git-worker never pushes), so a new worker starts from that local branch, with
what has landed since the last push. The remote-tracking branch is the base only when no
local branch lands in it. A local branch is never fetched. A remote-tracking branch is
fetched first unless fetching is off, with a timeout and without prompts; a failure is
classified so the message can say what went wrong and the way out.
"""

from __future__ import annotations

import os

from git_worker import git, refnames
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.repo import Repo

# typing only for annotations: importing it costs every spawn ~3 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NETWORK, AUTH, NO_REMOTE, NO_BRANCH, OTHER = (
    "network", "auth", "remote not found", "branch not found", "other",
)

# Substrings of git/ssh/curl messages, in the order they are tested.
_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (NO_BRANCH, ("couldn't find remote ref", "could not find remote ref")),
    (AUTH, (
        "permission denied", "authentication failed", "could not read username",
        "could not read password", "terminal prompts disabled", "host key verification failed",
        "the requested url returned error: 401", "the requested url returned error: 403",
        "access denied",
    )),
    (NO_REMOTE, (
        "does not appear to be a git repository", "repository not found",
        "the requested url returned error: 404", "no such remote", "not found",
    )),
    (NETWORK, (
        "could not resolve host", "could not resolve hostname", "name or service not known",
        "temporary failure in name resolution", "connection refused", "connection timed out",
        "timed out", "network is unreachable", "no route to host", "connection reset",
        "failed to connect", "unable to connect", "couldn't connect", "ssh: connect to host",
        "could not read from remote repository", "connection closed", "broken pipe",
    )),
)


class Base:
    # A plain class, not a dataclass: see spawn.Task.
    def __init__(self, name: str, ref: str | None, oid: str, remote: str | None = None,
                 remote_branch: str | None = None) -> None:
        self.name = name  # as shown to users: main, origin/main, v1.0, or a commit as given
        self.ref = ref  # full ref name; None for a commit named by itself (an OID)
        self.oid = oid  # the commit new workers start from
        self.remote = remote  # for a remote-tracking base
        self.remote_branch = remote_branch
        self.fetched = False
        self.fetch_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ref": self.ref, "oid": self.oid, "fetched": self.fetched,
                "fetch_error": self.fetch_error}


def classify(stderr: str) -> str:
    text = stderr.lower()
    for kind, needles in _CLASSES:
        if any(n in text for n in needles):
            return kind
    return OTHER


def resolve(repo: Repo, config: Config, name: str | None, *, fetch: bool) -> Base:
    """Find the base and, for a remote-tracking one, fetch it when ``fetch`` is on."""
    if name is None:
        name = config.string("worker.baseBranch") or _detect(repo)
    base = _locate(repo, name)
    if base.remote is not None and fetch and not config.no_fetch:
        _fetch(repo, config, base)
    if not base.oid:
        raise _not_found(repo, name)
    return base


def _locate(repo: Repo, name: str) -> Base:
    if name.startswith("refs/"):
        candidates = [name]
    else:
        candidates = [refnames.HEADS + name, refnames.REMOTES + name, refnames.TAGS + name]
    for ref in candidates:
        oid = repo.read_ref(ref)
        if oid is not None:
            base = Base(refnames.short(ref), ref, repo.peel_to_commit(oid))
            if ref.startswith(refnames.REMOTES):
                base.remote, _, base.remote_branch = refnames.short(ref).partition("/")
            return base
    # Not here yet, but maybe on a remote: origin/feature that was never fetched.
    short = refnames.short(name)
    remote, _, branch = short.partition("/")
    if branch and remote in _remotes(repo):
        return Base(short, refnames.REMOTES + short, "", remote, branch)
    # A commit (an OID, HEAD~2…): a base like any other, except that there is no branch
    # to land in (merge then asks for --into).
    oid = repo.commit_named(name)
    if oid is not None:
        return Base(name, None, oid)
    raise _not_found(repo, name)


def landing_branch(repo: Repo, remote_ref: str,
                   upstreams: dict[str, str] | None = None) -> str:
    """The local branch work based on ``remote_ref`` lands in: the one whose upstream it
    is, else the one named alike (origin/main → main). It may not exist."""
    for local, upstream in (repo.upstreams() if upstreams is None else upstreams).items():
        if upstream == remote_ref:
            return local
    return refnames.HEADS + refnames.short(remote_ref).partition("/")[2]


def _detect(repo: Repo) -> str:
    origin_head = repo.symref_target(refnames.REMOTES + "origin/HEAD")
    if origin_head and repo.read_ref(origin_head):
        local = landing_branch(repo, origin_head)
        return refnames.short(local if repo.read_ref(local) else origin_head)
    for candidate in ("main", "master", "trunk"):
        if repo.read_ref(refnames.HEADS + candidate):
            return candidate
    head = _current_branch(repo)
    if head and repo.read_ref(head):
        return refnames.short(head)
    raise WorkerError(
        "no base branch: found no origin/HEAD, main, master or trunk, and HEAD has no commits",
        hint="pass -f BRANCH, or set one: git config worker.baseBranch BRANCH",
    )


def _current_branch(repo: Repo) -> str | None:
    return git.head_branch(repo.git_dir)


def _remotes(repo: Repo) -> list[str]:
    return git.remote_names(repo.common_dir)


def _fetch(repo: Repo, config: Config, base: Base) -> None:
    import subprocess

    assert base.remote and base.remote_branch
    timeout = config.fetch_timeout
    try:
        failure = git.fetch_branch(repo.common_dir, base.remote, base.remote_branch,
                                   env=noninteractive_env(repo, timeout), timeout=timeout)
    except subprocess.TimeoutExpired:
        failure = f"timed out after {timeout:g} s (worker.fetchTimeout)"
    if failure is None:
        oid = repo.read_ref(str(base.ref))
        if oid is None:  # fetched, yet no remote-tracking ref: unusual refspec
            raise WorkerError(
                f"fetched {base.remote} {base.remote_branch}, but {base.ref} was not updated",
                hint=f"check remote.{base.remote}.fetch, or start from a local branch with -f",
            )
        base.oid, base.fetched = repo.peel_to_commit(oid), True
        return
    kind = classify(failure)
    first_line = _summary(failure)
    way_out = "pass --no-fetch, or turn fetching off: git config worker.noFetch true"
    if kind == NETWORK and base.oid:
        base.fetch_error = f"{kind}: {first_line}"  # the caller warns: spawn goes on
        return
    if kind == NO_BRANCH and base.oid:
        raise WorkerError(
            f"branch {base.remote_branch} no longer exists on {base.remote} (deleted there?); "
            f"your copy {base.name} at {base.oid[:12]} is what it was when last fetched",
            hint=f"start from that copy with --no-fetch (-f {base.name} --no-fetch), or "
                 f"choose another base with -f",
        )
    if kind == NO_BRANCH:
        raise _not_found(repo, base.name, on=base.remote)
    where = f"cannot fetch base '{base.name}' from {base.remote}"
    if kind == NETWORK:
        raise WorkerError(f"{where}: network problem: {first_line}",
                          hint=f"check the connection; or start from a local branch (-f main); "
                               f"there is no local copy of {base.name} to fall back on")
    if kind == AUTH:
        raise WorkerError(f"{where}: authentication failed: {first_line}",
                          hint=f"check your credentials for {base.remote}; or {way_out}")
    if kind == NO_REMOTE:
        raise WorkerError(f"{where}: remote repository not found: {first_line}",
                          hint=f"check: git remote get-url {base.remote}; or {way_out}")
    raise WorkerError(f"{where}: {first_line}", hint=way_out)


def noninteractive_env(repo: Repo, timeout: float) -> dict[str, str]:
    """The environment for git talking to a remote: never a prompt (terminal, credential
    manager, ssh passphrase or host key), a connect timeout; a failure instead."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}
    if "GIT_SSH_COMMAND" not in os.environ and not _has_ssh_command(repo):
        env["GIT_SSH_COMMAND"] = f"ssh -o BatchMode=yes -o ConnectTimeout={max(1, int(timeout))}"
    return git.clean_env(env)


def summary(stderr: str) -> str:
    """The line of a git/ssh failure that says what went wrong."""
    return _summary(stderr)


def _has_ssh_command(repo: Repo) -> bool:
    return git.is_set(repo.common_dir, "core.sshCommand")


def _summary(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        low = ln.lower()
        if low.startswith(("fatal:", "ssh:", "error:")) and "could not read from remote" not in low:
            return ln
    return lines[0] if lines else "(no output)"


def _not_found(repo: Repo, name: str, on: str | None = None) -> WorkerError:
    import difflib  # only when a base is not found

    refs = [r.decode(errors="replace") for r in repo.refs]
    names = sorted({refnames.short(r) for r in refs
                    if r.startswith((refnames.HEADS, refnames.REMOTES))})
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    where = f" on {on}" if on else ""
    hint = f"did you mean: {', '.join(close)}?" if close else "git branch -a lists the branches"
    return WorkerError(f"base branch '{name}' not found{where}", hint=hint)
