"""Checks that git-worker can do its job here; each says ok / warn / fail and the fix.

Every probe is bounded in time and never prompts: a version query has a timeout, the
remote is asked with `git ls-remote` under GIT_TERMINAL_PROMPT=0 and ssh BatchMode, and
an agent's login is judged from its credential files and environment, never by calling
its service.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass

from git_worker import git, leases
from git_worker.config import SETTINGS, Config
from git_worker.errors import WorkerError
from git_worker.repo import Repo

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_GIT = (2, 38)  # merge-tree --write-tree (merge, conflicts)
TESTED_DULWICH = (1, 2, 21)
_PROBE_TIMEOUT = 10.0


@dataclass
class Check:
    check: str
    status: str
    detail: str
    fix: str | None = None


def run_checks(*, hosts: bool = False) -> list[Check]:
    checks = [*_installation(), _git_version(), _dulwich_version()]
    if checks[-1].status == FAIL:
        return checks  # everything below reads the repository through dulwich
    try:
        repo = Repo.discover()
    except WorkerError as e:
        checks.append(Check("repository", FAIL, str(e).split("\n")[0],
                            "run git worker doctor inside the repository you use it in"))
        return checks
    try:
        config = Config.load(repo.common_dir)
    except WorkerError as e:
        checks.append(Check("settings", FAIL, e.message, e.hint))
        return checks
    checks += _settings(config)
    for probe in (_launcher, _agents, _tracker, _review_gate, _remote, _worktree_dir,
                  _identity, _hooks):
        try:
            checks += probe(repo, config)
        except WorkerError as e:  # a setting that doesn't parse: reported by _settings
            checks.append(Check(probe.__name__.strip("_").replace("_", " "), FAIL,
                                e.message.split("\n")[0], e.hint))
    if hosts:
        checks += _hosts(repo, config)
    return checks


def _hosts(repo: Repo, config: Config) -> list[Check]:
    """Each worker.host.<name>: reached, logged in (no prompt), git-worker there and of a
    compatible version, its clone on the same remote (worker.remote's URL) as this one."""
    from git_worker import __version__ as VERSION  # noqa: N812
    from git_worker import git, hosts

    configured = hosts.configured(config)
    if not configured:
        return [Check("hosts", WARN, "no host configured",
                      "git config worker.host.NAME.ssh USER@BOX; "
                      "git config worker.host.NAME.path /path/to/clone")]
    remote = config.string("worker.remote")
    url = git.remote_url(repo.common_dir, remote) if remote else None
    checks = []
    with hosts.session(config) as ssh:
        for name, host in configured.items():
            label = f"host {name}"
            try:
                proc = ssh.run(host, ["version"], capture=True)
                there = ssh.run(host, ["remote", "get-url", "--", str(remote)], capture=True,
                                git=True) if url else None
            except hosts.HostError as e:
                checks.append(Check(label, FAIL, f"{e.kind}: {e.message}", e.hint))
                continue
            version = proc.stdout.decode(errors="replace").split("\n")[0].strip()
            if proc.returncode != 0 or not version.startswith("git-worker "):
                checks.append(Check(label, FAIL, f"git-worker there does not answer 'version' "
                                    f"({version or 'no output'})",
                                    f"install git-worker {VERSION} on {name}"))
                continue
            theirs = version.split()[1]
            if not hosts.compatible(theirs):
                checks.append(Check(label, FAIL, f"git-worker {theirs} there, {VERSION} here",
                                    f"install git-worker {VERSION} on {name}"))
                continue
            detail = f"{host.destination}:{host.path}, git-worker {theirs}"
            same = there.stdout.decode(errors="replace").strip() if there else None
            if url and there is not None and (there.returncode != 0 or same != url):
                checks.append(Check(label, WARN, f"{detail}; its {remote} is "
                                    f"{same or 'not set'}, not {url}",
                                    f"clone {url} to {host.path} on {name}"))
            else:
                checks.append(Check(label, OK, detail))
    return checks



# --- git-worker itself --------------------------------------------------------------------


def _installation() -> list[Check]:
    """Every file git-worker ships is there, and executable where another program runs it."""
    from git_worker import __version__, installation

    here = installation.current()
    broken = installation.problems()
    if not broken:
        return [Check("git-worker", OK, f"{__version__} ({here.kind}: {here.root}); "
                      f"all {len(installation.SHIPPED)} shipped files in place")]
    return [Check("git-worker", FAIL, f"{shipped.path} is {what}: "
                  f"{installation.location(shipped)} ({shipped.purpose})", here.repair(shipped))
            for shipped, what in broken]


# --- tools ---------------------------------------------------------------------------------


def _version_of(argv: list[str]) -> str | None:
    """First line of ``argv``'s output, or None when it cannot run in time."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=_PROBE_TIMEOUT, check=False, env=git.clean_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (proc.stdout or proc.stderr).decode(errors="replace").strip()
    return text.splitlines()[0] if text and proc.returncode == 0 else None


def _git_version() -> Check:
    text = git.version()
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    version = tuple(int(x) for x in m.groups() if x) if m else (0,)
    shown = ".".join(map(str, version))
    if version[:2] < MIN_GIT:
        return Check("git", FAIL, f"{shown}: merge and conflicts need git 2.38 or newer",
                     "install a newer git (e.g. from your distribution's backports)")
    return Check("git", OK, shown)


def _dulwich_version() -> Check:
    try:
        import dulwich
    except ImportError:
        return Check("dulwich", FAIL, "not installed", "python -m pip install dulwich==1.2.21")
    version = tuple(dulwich.__version__)
    shown = ".".join(map(str, version))
    if version != TESTED_DULWICH:
        return Check("dulwich", WARN, f"{shown} (git-worker is tested with 1.2.21, whose "
                     "pitfalls it works around)", "python -m pip install dulwich==1.2.21")
    return Check("dulwich", OK, f"{shown} (python {sys.version.split()[0]})")


def _launcher(repo: Repo, config: Config) -> list[Check]:
    setting = config.string("worker.launcher")
    version = _version_of(["tmux", "-V"]) if shutil.which("tmux") else None
    if version:
        return [Check("tmux", OK, version)]
    if setting == "tmux":
        return [Check("tmux", FAIL, "worker.launcher is tmux, but tmux is not installed",
                      "install tmux (apt install tmux), or: git config worker.launcher detached")]
    return [Check("tmux", WARN, "not found: agents run detached (logs, but no attach)",
                  "install tmux (apt install tmux) to attach to agents")]


def _agents(repo: Repo, config: Config) -> list[Check]:
    from git_worker import agents

    default = config.agent
    names = list(dict.fromkeys([default, *agents.custom_names(config)]))
    return [_agent(config, name, is_default=name == default) for name in names]


def _agent(config: Config, name: str, *, is_default: bool) -> Check:
    from git_worker import agents

    found = agents.health(config, name, _version_of)
    status = {agents.Verdict.OK: OK, agents.Verdict.NO_LOGIN: WARN,
              agents.Verdict.MISSING: FAIL if is_default else WARN}[found.verdict]
    label = f"agent {name}" + (" (worker.agent)" if is_default else "")
    return Check(label, status, found.detail, found.fix)


def _tracker(repo: Repo, config: Config) -> list[Check]:
    setting = (config.string("worker.tracker") or "").lower().replace("auto", "")
    close = config.boolean("worker.closeOnMerge")
    if setting == "none":
        return [Check("tracker", OK, "off (worker.tracker none); tasks come from -d")]
    beads = os.path.isdir(os.path.join(repo.main_worktree, ".beads"))
    if shutil.which("bd") is None:
        if setting == "bd" or close:
            return [Check("tracker", FAIL if setting == "bd" else WARN,
                          "bd is not on PATH" + (" (worker.tracker is bd)" if setting else
                                                 ", yet worker.closeOnMerge is true"),
                          "install beads (bd), or: git config worker.tracker none")]
        return [Check("tracker", OK, "bd not installed; tasks come from -d")]
    version = _version_of(["bd", "--version"]) or "bd (version unknown)"
    if not beads:
        return [Check("tracker", WARN, f"{version}, but no .beads database in "
                      f"{repo.main_worktree}", "create one with: bd init (or worker.tracker none)")]
    return [Check("tracker", OK, f"{version}; .beads found"
                  + ("; closes issues on merge" if close else ""))]


def _review_gate(repo: Repo, config: Config) -> list[Check]:
    from git_worker import review

    argv = review.gate_argv(config)
    found = review.locate(argv, repo.main_worktree)
    auto = config.review
    if found:
        return [Check("review gate", OK, f"{shlex.join(argv)} ({found})"
                      + ("; runs when an agent exits 0" if auto else ""))]
    how = "git config worker.reviewGate '<command>' (exit 0 = passed)"
    if auto:
        return [Check("review gate", FAIL, f"'{argv[0]}' not found, yet worker.review is true",
                      f"set one: {how}; or: git config worker.review false")]
    return [Check("review gate", WARN, f"'{argv[0]}' not found (needed by git worker review)",
                  f"set one: {how}")]


def _remote(repo: Repo, config: Config) -> list[Check]:
    from git_worker import base_branch

    try:
        base = base_branch.resolve(repo, config, None, fetch=False)
    except WorkerError as e:
        return [Check("remote", WARN, e.message, e.hint)]
    if base.remote is None:
        return [Check("remote", OK, f"base {base.name} is local: nothing to fetch")]
    if config.no_fetch:
        return [Check("remote", OK, f"{base.name}; fetching is off (worker.noFetch)")]
    timeout = min(config.fetch_timeout, _PROBE_TIMEOUT)
    env = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}
    if "GIT_SSH_COMMAND" not in os.environ:  # as base_branch._fetch: never ask, fail instead
        env["GIT_SSH_COMMAND"] = f"ssh -o BatchMode=yes -o ConnectTimeout={max(1, int(timeout))}"
    try:
        heads, failure = git.remote_heads(repo.common_dir, base.remote,
                                          base.remote_branch or "", env=git.clean_env(env),
                                          timeout=timeout)
    except subprocess.TimeoutExpired:
        return [Check("remote", WARN, f"{base.remote} did not answer within {timeout:g} s",
                      "spawn falls back to the local copy; or: git config worker.noFetch true")]
    if failure is not None:
        err = failure.strip()
        kind = base_branch.classify(err)
        first = err.splitlines()[0] if err else "(no output)"
        if kind == base_branch.NETWORK:
            return [Check("remote", WARN, f"{base.remote} unreachable ({first})",
                          "spawn falls back to the local copy of "
                          f"{base.name}; or: git config worker.noFetch true")]
        return [Check("remote", FAIL, f"{base.remote}: {kind}: {first}",
                      f"check git remote get-url {base.remote} and your credentials; "
                      "or: git config worker.noFetch true")]
    if not heads.strip():
        return [Check("remote", FAIL, f"{base.remote} has no branch {base.remote_branch}",
                      "set the base: git config worker.baseBranch <branch>")]
    return [Check("remote", OK, f"{base.remote} reachable; {base.name} exists there")]


def _worktree_dir(repo: Repo, config: Config) -> list[Check]:
    from git_worker import spawn

    root = spawn.worktree_root(repo, config)
    existing = root
    while not os.path.isdir(existing):
        existing = os.path.dirname(existing)
    writable = os.access(existing, os.W_OK | os.X_OK)
    detail = root if existing == root else f"{root} (will be created in {existing})"
    if not writable:
        return [Check("worktree dir", FAIL, f"{existing} is not writable",
                      "choose another place: git config worker.worktreeDir <dir>")]
    return [Check("worktree dir", OK, detail)]


def _identity(repo: Repo, config: Config) -> list[Check]:
    ident = git.committer_ident(repo.common_dir)
    if ident is None:
        return [Check("identity", WARN, "no user.name / user.email: git worker merge cannot "
                      "make merge commits", "git config --global user.name 'Your Name'; "
                      "git config --global user.email you@example.com")]
    return [Check("identity", OK, ident.rsplit(">", 1)[0] + ">")]


def _hooks(repo: Repo, config: Config) -> list[Check]:
    from git_worker import hooks

    state = hooks.installed(repo)
    missing = [n for n, ok in state.items() if not ok]
    if missing:
        return [Check("git hooks", WARN, f"not installed: {', '.join(missing)} (plain git can "
                      "delete a live worker's branch)", "git worker hooks install")]
    return [Check("git hooks", OK, f"installed in {hooks.repo_hooks_dir(repo)}")]


# --- settings ------------------------------------------------------------------------------


def _settings(config: Config) -> list[Check]:
    problems: list[Check] = []

    def attempt(key: str, parse: Callable[[str], object]) -> None:
        try:
            parse(key)
        except WorkerError as e:
            problems.append(Check(f"setting {key}", FAIL, e.message, e.hint))

    parsers: dict[str, Callable[[str], object]] = {
        "bool": config.boolean,
        "int": lambda key: config.integer(key, minimum=1),
        "seconds": config.seconds,
    }
    for s in SETTINGS:
        if config.entry(s.key) is None:
            continue
        if s.kind in parsers:
            attempt(s.key, parsers[s.kind])
        elif s.kind == "multi":
            for value in config.values(s.key):
                try:
                    shlex.split(value)
                except ValueError as err:
                    problems.append(Check(f"setting {s.key}", FAIL,
                                          f"'{value}' is not valid shell words ({err})",
                                          f"fix it: git config --unset-all {s.key} and set again"))
    attempt("worker.branchPrefix", lambda _: config.branch_prefix)
    attempt("worker.ports, worker.portRange, worker.env.*", lambda _: leases.validate(config))
    attempt("worker.reviewGate", config.words)
    for name, allowed in (("worker.launcher", ("tmux", "detached")),
                          ("worker.tracker", ("bd", "none", "auto"))):
        chosen = config.string(name)
        if chosen is not None and chosen.lower() not in allowed:
            problems.append(Check(f"setting {name}", FAIL, f"'{chosen}' is not one of "
                                  f"{', '.join(allowed)}", f"git config {name} {allowed[0]}"))
    known = {s.key.lower() for s in SETTINGS}
    seen: set[str] = set()
    for e in config.entries:
        if e.key in seen:
            continue
        seen.add(e.key)
        parts = e.key.split(".")
        if len(parts) >= 4 and parts[1] == "agent" and parts[-1] in ("command", "args"):
            attempt(e.key, config.words)
        elif len(parts) == 3 and parts[1] == "env":
            continue  # a worker.env template: checked with the leases above
        elif len(parts) >= 4 and parts[1] == "host" and parts[-1] in ("ssh", "path"):
            continue  # a host reached over ssh: doctor --hosts checks it
        elif e.key.lower() not in known:
            problems.append(Check(f"setting {e.key}", WARN, "unknown setting (a typo?)",
                                  f"git config --unset {e.key}"))
    return problems or [Check("settings", OK, f"{len(config.entries)} worker.* value(s) parse")]
