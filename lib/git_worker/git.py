"""The one way git-worker runs the git CLI: argv lists, never a shell.

dulwich handles refs, objects and worktree administration; the git CLI is used where
dulwich is wrong or slow, and each caller says which in a comment.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

from git_worker.errors import GitCommandError, WorkerError

# Variables that pin git to one repository or worktree. A child that targets another
# worktree must not inherit them, or it would act on ours (pre-commit's no_git_env).
_REPO_PINNING = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
)


def clean_env(extra: Mapping[str, str] | None = None,
              base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment (or ``base``) without the variables that pin git to a
    repository."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k not in _REPO_PINNING}
    if extra:
        env.update(extra)
    return env


def run(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = None,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git <argv>``; raise GitCommandError on a non-zero exit when ``check``.

    ``env=None`` inherits the caller's environment untouched (so `git -c`, GIT_DIR and
    friends reach git as the user meant); pass ``clean_env()`` to target another worktree.
    """
    full = ["git", *argv]
    try:
        # A session of its own, so a timeout can end git *and* its children (ssh, curl):
        # killing git alone would leave them holding our pipes open.
        child = subprocess.Popen(
            full,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=timeout is not None,
        )
    except FileNotFoundError as e:
        raise WorkerError("git is not on PATH", hint="install git 2.39 or newer") from e
    try:
        out, err = child.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        raise
    except BaseException:
        child.kill()
        child.wait()
        raise
    proc = subprocess.CompletedProcess(full, child.returncode, out, err)
    if check and proc.returncode != 0:
        raise GitCommandError(full, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc


def output(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input: bytes | None = None,
) -> str:
    """stdout of a git command that must succeed, decoded, without the final newline."""
    proc = run(argv, cwd=cwd, env=env, timeout=timeout, input=input)
    return proc.stdout.decode(errors="surrogateescape").rstrip("\n")


def interactive(argv: Sequence[str], *, cwd: str | None = None) -> int:
    """Run ``git <argv>`` on the user's terminal (its pager, its colours); its exit code."""
    try:
        return subprocess.call(["git", *argv], cwd=cwd)
    except FileNotFoundError as e:
        raise WorkerError("git is not on PATH", hint="install git 2.39 or newer") from e


# --- running git in a linked worktree ---------------------------------------------------
# Every git command git-worker runs in (or about the files of) a worker's worktree goes
# through in_worktree(), with a Pinned that worktrees.pin() made after checking it.


class Pinned:
    """A worktree as git-worker runs git in it.

    ``admin`` is the administrative dir this repository registered for it (found from the
    common dir's side), never what the worktree's `.git` file names, which the agent may
    have replaced; None for the main worktree, which is the user's own and found by git
    from its files as always.
    """

    def __init__(self, worktree: str, admin: str | None, common_dir: str) -> None:
        self.worktree = worktree
        self.admin = admin
        self.common_dir = common_dir


def pinned_env(common_dir: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment that pins git's common dir (config, hooks, refs, objects) to
    this repository: an admin dir's `commondir` file is the agent's to rewrite (it can
    write that dir), and git would read the config of whatever repository it names."""
    return clean_env({**(extra or {}), "GIT_COMMON_DIR": common_dir})


# A setting that runs a command by its name alone, turned off for git-worker's own git in a
# linked worktree. worktrees.pin() has just checked that the worktree's config.worktree is
# git-worker's; this covers the instant between that check and git reading the file.
# (Filter and diff drivers cannot be covered this way: .gitattributes chooses their names.)
NO_FSMONITOR = ("-c", "core.fsmonitor=false")


def in_worktree(pinned: Pinned, argv: Sequence[str], *, action: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run ``git <argv>`` in the worktree ``pinned`` names, through its registered admin
    dir with this repository's config and nothing the worktree or its admin dir names.
    ``action`` is the reflog's name for it (GIT_REFLOG_ACTION); no editor is ever opened."""
    extra = {"GIT_EDITOR": "true", **({"GIT_REFLOG_ACTION": action} if action else {})}
    if pinned.admin is None:
        return run(argv, cwd=pinned.worktree, env=clean_env(extra), check=check)
    return run([*NO_FSMONITOR, f"--git-dir={pinned.admin}", f"--work-tree={pinned.worktree}",
                *argv], cwd=pinned.worktree, env=pinned_env(pinned.common_dir, extra),
               check=check)


def merge_in(pinned: Pinned, commit: str, message: str, action: str) -> bool:
    """`git merge --no-edit COMMIT` in the worktree; False when it stopped (conflict)."""
    proc = in_worktree(pinned, ["merge", "--no-edit", "--no-stat", "--quiet", "-m", message,
                                commit], action=action, check=False)
    return proc.returncode == 0


def rebase_in(pinned: Pinned, onto: str, action: str) -> bool:
    """`git rebase ONTO` in the worktree; False when it stopped (conflict)."""
    return in_worktree(pinned, ["rebase", "--quiet", onto], action=action,
                       check=False).returncode == 0


def abort_in(pinned: Pinned, operation: str) -> None:
    """`git merge --abort` or `git rebase --abort`: back to before it started."""
    in_worktree(pinned, [operation, "--abort"])


def unmerged_paths(pinned: Pinned) -> list[str]:
    """Paths with unresolved conflicts in the worktree's index, each once."""
    out = in_worktree(pinned, ["diff", "--name-only", "--diff-filter=U", "-z"]).stdout
    return list(dict.fromkeys(p for p in out.decode(errors="surrogateescape").split("\0") if p))


def head_of(pinned: Pinned) -> str:
    """The commit the worktree's HEAD points to."""
    out = in_worktree(pinned, ["rev-parse", "--verify", "HEAD"]).stdout
    return out.decode(errors="surrogateescape").strip()


# --- the team remote (team.py): records pushed and fetched with leases -------------------


class Pushed:
    """What `git push --porcelain` said of one ref."""

    def __init__(self, ref: str, flag: str, summary: str) -> None:
        self.ref = ref  # the remote ref
        self.flag = flag  # ' ' '+' '-' '*' '=' done; '!' rejected
        self.summary = summary  # "[new reference]", "[rejected] (stale info)", …

    @property
    def ok(self) -> bool:
        return self.flag != "!"


def push(cwd: str, remote: str, updates: Mapping[str, str | None], leases: Mapping[str, str],
         *, env: Mapping[str, str], timeout: float) -> tuple[dict[str, Pushed], str]:
    """Push ``updates`` (remote ref → local commit, None to delete it), each ref only if it
    is on the remote at the value its lease names ("" = the ref must not exist).

    `--force-with-lease=<ref>:<expect>` is a compare-and-swap on the remote (git 2.39's
    remote.c: an empty <expect> is the null OID, i.e. "must not exist"). Not --atomic:
    each ref stands on its own. Returns each ref's outcome and git's stderr; no outcome
    at all means the remote was not reached (the stderr says why).
    """
    # Not --quiet: it silences --porcelain's line for every ref that was pushed.
    argv = ["push", "--porcelain", "--no-verify"]
    argv += [f"--force-with-lease={ref}:{leases.get(ref, '')}" for ref in updates]
    argv += ["--", remote]
    argv += [f"{oid}:{ref}" if oid else f":{ref}" for ref, oid in updates.items()]
    proc = run(argv, cwd=cwd, env=env, check=False, timeout=timeout)
    outcome = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        flag, tab, rest = line.partition("\t")
        if not tab or len(flag) != 1:
            continue  # "To <url>", "Done"
        spec, _, summary = rest.partition("\t")
        ref = spec.rpartition(":")[2]
        outcome[ref] = Pushed(ref, flag, summary)
    return outcome, proc.stderr.decode(errors="replace")


def fetch_refs(cwd: str, remote: str, refspecs: Sequence[str], *, env: Mapping[str, str],
               timeout: float) -> str | None:
    """`git fetch --prune REMOTE REFSPEC…` (pruning only what the refspecs map); None when
    it worked, else git's stderr."""
    argv = ["fetch", "--quiet", "--no-tags", "--prune", "--no-write-fetch-head",
            "--no-recurse-submodules", remote, *refspecs]
    proc = run(argv, cwd=cwd, env=env, check=False, timeout=timeout)
    return None if proc.returncode == 0 else proc.stderr.decode(errors="replace") or "failed"


def remote_refs(cwd: str, remote: str, refs: Sequence[str], *, env: Mapping[str, str],
                timeout: float) -> tuple[dict[str, str], str | None]:
    """`git ls-remote REMOTE REF…`: the remote's value of each of ``refs`` it has (full
    names), and git's stderr when the remote was not reached (else None)."""
    proc = run(["ls-remote", "--", remote, *refs], cwd=cwd, env=env, check=False,
               timeout=timeout)
    if proc.returncode != 0:
        return {}, proc.stderr.decode(errors="replace") or "failed"
    found = {}
    for line in proc.stdout.decode(errors="surrogateescape").splitlines():
        oid, _, ref = line.partition("\t")
        if ref in refs:
            found[ref] = oid
    return found, None


def remote_url(cwd: str, remote: str) -> str | None:
    """`git remote get-url REMOTE`, or None when there is no such remote."""
    proc = run(["remote", "get-url", "--", remote], cwd=cwd, check=False)
    return proc.stdout.decode(errors="surrogateescape").strip() if proc.returncode == 0 \
        else None


def config_get_regexp(cwd: str, pattern: str) -> dict[str, str]:
    """key (lowercased by git) → last value, for every setting matching ``pattern``."""
    proc = run([f"--git-dir={cwd}", "config", "-z", "--get-regexp", pattern], cwd=cwd,
               env=clean_env(), check=False)
    found = {}
    for item in proc.stdout.decode(errors="surrogateescape").split("\0"):
        key, _, value = item.partition("\n")
        if key:
            found[key] = value
    return found
