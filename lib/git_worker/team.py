"""The team registry: refs/workers/<id> shared through a git remote (worker.remote).

No server of its own: the remote's refs are the shared registry, and a push with a lease
(`--force-with-lease=<ref>:<expected>`) is its compare-and-swap.

- This clone's records stay in its refs/workers/<id>, and only this clone writes them. Each
  carries ``clone`` {id, name, user}: worker.hostId (generated once into this clone's
  config), worker.hostName (default: the machine's name) and the user. Two clones on one
  machine are two hosts.
- The remote's refs/workers/* are fetched into refs/workers-remote/<remote>/<id>: every
  host's records as last seen, read-only here. For a record of ours, that ref is what was
  last published: the lease of the next push.
- A claim pushes the new record with a lease that requires the remote ref absent: of two
  clones claiming one id, the remote's ref lock lets exactly one win.
- Every later change (and a removal) is pushed with a lease on the last published commit;
  a rejected push refreshes the view and tries again: no update is lost, and another
  clone's record is never overwritten.
- Remote unreachable: work goes on locally; the next command that reaches the remote
  publishes what is pending. An id claimed meanwhile by another clone is a conflict: both
  records are kept (ours in refs/workers/, theirs in refs/workers-remote/), and list and
  fsck report it.
"""

from __future__ import annotations

import os
import time

from git_worker import git, locks, processes, refnames
from git_worker.errors import WorkerError
from git_worker.registry import store
from git_worker.registry.record import Corrupt, Record
from git_worker.registry.runtime import private, write_atomically
from git_worker.registry.store import Entry
from git_worker.repo import Repo

# json and subprocess are imported where a push, a fetch or a review file needs them: rm
# and spawn only ask whether a team is configured (~5 ms of CPU before their first write).

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from git_worker.config import Config

# <git-common-dir>/worker-team/: when each remote's view was last fetched, the hostId lock.
TEAM_DIR = "worker-team"
FETCHED_SUFFIX = ".fetched"
# worker-team/reviews/<id>.json, .log: this clone's reviews of other hosts' workers.
REVIEWS_DIR = "reviews"
REVIEW_SUFFIX = ".json"
REVIEW_LOG_SUFFIX = ".log"
_PUSH_ATTEMPTS = 8
# What a push that lost a compare-and-swap says: "stale info" and the rest when the client
# saw the ref moved (git 2.39's transport.c); "[remote rejected] (failed to update ref)"
# when two pushes passed that check at once and the remote's ref lock or old-value check
# let the other one through (measured by tests/test_team.py's race).
_STALE = ("stale info", "fetch first", "already exists", "non-fast-forward",
          "failed to update ref", "failed to lock")


class Settings:
    """worker.remote and who this clone is."""

    def __init__(self, remote: str, clone_id: str, name: str, user: str,
                 timeout: float) -> None:
        self.remote = remote
        self.clone_id = clone_id  # worker.hostId
        self.name = name  # worker.hostName, else the machine's name
        self.user = user
        self.timeout = timeout  # worker.fetchTimeout, for every push and fetch

    def identity(self) -> dict[str, Any]:
        return {"id": self.clone_id, "name": self.name, "user": self.user}


class Unreachable(WorkerError):
    """The remote could not be reached; ``kind`` is base_branch.classify's (network, auth…)."""

    def __init__(self, remote: str, kind: str, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        hints = {
            "network": "check the connection; the work goes on here and is published by the "
                       "next command that reaches it (or: git worker publish)",
            "auth": f"check your credentials for {remote}",
            "remote not found": f"check: git remote get-url {remote}",
        }
        super().__init__(f"cannot reach {remote} ({kind}: {detail})",
                         hint=hints.get(kind, "then run: git worker publish"))


class Taken(WorkerError):
    """The id is claimed on the remote by another clone."""


class Published:
    """What one publish did."""

    def __init__(self) -> None:
        self.pushed: list[str] = []  # ids whose record is now the remote's
        self.removed: list[str] = []  # ids whose record was taken off the remote
        self.conflicts: dict[str, Record] = {}  # ours here, another clone's there


def settings(repo: Repo, config: Config) -> Settings | None:
    """The team settings, or None when worker.remote is unset (a registry of one clone)."""
    remote = config.string("worker.remote")
    if remote is None:
        return None
    if git.remote_url(repo.common_dir, remote) is None:
        raise WorkerError(f"worker.remote is '{remote}', but this repository has no remote "
                          "of that name",
                          hint="git remote -v lists them; set one: git config worker.remote "
                               "NAME (or unset it: git config --unset worker.remote)")
    return Settings(remote, _clone_id(repo, config),
                    config.string("worker.hostName") or processes.hostname(), _user(),
                    config.fetch_timeout)


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER") or str(os.getuid())


def _clone_id(repo: Repo, config: Config) -> str:
    """worker.hostId: this clone's name in the team registry, generated once."""
    known = config.string("worker.hostId")
    if known:
        return known
    import secrets

    from git_worker.repo import config_file_get, config_file_set

    path = os.path.join(repo.common_dir, "config")
    with locks.clone_id(_team_dir(repo)):
        known = config_file_get(path, "worker.hostId")
        if not known:
            known = secrets.token_hex(6)
            config_file_set(path, "worker.hostId", known)
    return known


def _team_dir(repo: Repo) -> str:
    path = os.path.join(repo.common_dir, TEAM_DIR)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def ours(found: Entry | Corrupt, clone_id: str) -> bool:
    return isinstance(found, Entry) and (found.record.clone or {}).get("id") == clone_id


def holder(record: Record) -> str:
    """Who holds a record of another clone, for messages: host NAME (user U)."""
    clone = record.clone or {}
    return f"host {clone.get('name') or record.host} (user {clone.get('user') or '?'})"


# --- the view: this clone's records next to what the remote holds ----------------------


def tracked(repo: Repo, remote: str,
            refs: dict[str, str] | None = None) -> dict[str, Entry | Corrupt]:
    """Every record fetched from ``remote`` (refs/workers-remote/<remote>/<id>), by id."""
    prefix = refnames.team(remote)
    table = repo.ref_table(prefix) if refs is None else \
        {r: o for r, o in refs.items() if r.startswith(prefix)}
    return {(e.id if isinstance(e, Corrupt) else e.record.id): e
            for e in store._parse_table(repo, table, prefix)}


def tracked_one(repo: Repo, remote: str, worker_id: str) -> Entry | Corrupt | None:
    """What ``remote`` held of ``worker_id`` when last fetched (or pushed), or None —
    without reading every other record fetched from it, as tracked() does."""
    found = store.read_one(repo, worker_id, refnames.team(remote))
    return found[0] if found else None


class View:
    """What `list` and `fsck` show of the team, read without network access."""

    def __init__(self, remote: str, clone_id: str, name: str,
                 local: dict[str, str], seen: dict[str, Entry | Corrupt],
                 fetched_at: float | None) -> None:
        self.remote = remote
        self.clone_id = clone_id
        self.name = name  # this clone's host name
        self.fetched_at = fetched_at  # when the remote was last fetched (time.time())
        self.others = [e for e in seen.values()
                       if isinstance(e, Entry) and not ours(e, clone_id)]
        self.conflicts = {e.record.id: e.record for e in self.others if e.record.id in local}
        self.others = [e for e in self.others if e.record.id not in local]
        self.unpublished = sorted(
            i for i, oid in local.items()
            if i not in self.conflicts and (i not in seen or seen[i].oid != oid))


def remote_of(repo: Repo) -> dict[str, str]:
    """worker.remote, worker.hostId, worker.hostName (lowercased keys), in one git config."""
    return git.config_get_regexp(repo.common_dir, r"^worker\.(remote|hostid|hostname)$")


def view(repo: Repo, refs: dict[str, str], found: dict[str, str],
         seen: list[Entry | Corrupt] | None = None) -> View | None:
    """The team view from a ref table that holds refs/workers/ and refs/workers-remote/
    (one for-each-ref: list's) and the settings (remote_of), or None without worker.remote.
    ``seen``: the remote's records, if the caller read them already. No network."""
    remote = found.get("worker.remote")
    if not remote:
        return None
    local = {r[len(refnames.REGISTRY):]: o for r, o in refs.items()
             if r.startswith(refnames.REGISTRY)}
    by_id = tracked(repo, remote, refs) if seen is None else \
        {(e.id if isinstance(e, Corrupt) else e.record.id): e for e in seen}
    return View(remote, found.get("worker.hostid", ""),
                found.get("worker.hostname") or processes.hostname(), local, by_id,
                fetched_at(repo, remote))


def fetched_at(repo: Repo, remote: str) -> float | None:
    try:
        return os.stat(os.path.join(repo.common_dir, TEAM_DIR,
                                    remote.replace("/", "%") + FETCHED_SUFFIX)).st_mtime
    except OSError:
        return None


# --- the network ------------------------------------------------------------------------


def fetch(repo: Repo, s: Settings, *, branches: str | None = None) -> Published:
    """Bring every host's records (and, given the branch prefix, the workers' branches)
    into the local read-only view; then publish what of ours is pending."""
    _fetch(repo, s, branches)
    return publish(repo, s)


def _fetch(repo: Repo, s: Settings, branches: str | None = None) -> None:
    import subprocess

    specs = [f"+{refnames.REGISTRY}*:{refnames.team(s.remote)}*"]
    if branches is not None:
        specs.append(f"+{refnames.HEADS}{branches}*:{refnames.REMOTES}{s.remote}/{branches}*")
    from git_worker import base_branch

    try:
        failure = git.fetch_refs(repo.common_dir, s.remote, specs,
                                 env=base_branch.noninteractive_env(repo, s.timeout),
                                 timeout=s.timeout)
    except subprocess.TimeoutExpired:
        failure = f"timed out after {s.timeout:g} s (worker.fetchTimeout)"
    if failure is not None:
        raise _unreachable(s, failure)
    marker = os.path.join(_team_dir(repo), s.remote.replace("/", "%") + FETCHED_SUFFIX)
    with open(marker, "w", opener=private):
        pass  # its mtime is the view's age
    os.utime(marker)


def _unreachable(s: Settings, stderr: str) -> Unreachable:
    from git_worker import base_branch

    return Unreachable(s.remote, base_branch.classify(stderr), base_branch.summary(stderr))


def _push(repo: Repo, s: Settings, updates: dict[str, str | None],
          leases: dict[str, str]) -> dict[str, git.Pushed]:
    import subprocess

    from git_worker import base_branch

    try:
        outcome, stderr = git.push(repo.common_dir, s.remote, updates, leases,
                                   env=base_branch.noninteractive_env(repo, s.timeout),
                                   timeout=s.timeout)
    except subprocess.TimeoutExpired:
        raise Unreachable(s.remote, base_branch.NETWORK,
                          f"timed out after {s.timeout:g} s (worker.fetchTimeout)") from None
    if not outcome:
        raise _unreachable(s, stderr)
    return outcome


def _track(repo: Repo, s: Settings, worker_id: str, old: str, new: str | None) -> None:
    """Record what the remote now holds (a compare-and-swap: a newer view stays)."""
    ref = refnames.team(s.remote, worker_id)
    if new is None:
        if old:
            repo.delete_ref(ref, old, "git-worker: published removal")
    elif old:
        repo.update_ref(ref, old, new, "git-worker: published")
    else:
        repo.create_ref(ref, new, "git-worker: published")


def claim(repo: Repo, s: Settings, entry: Entry) -> Unreachable | None:
    """Claim ``entry``'s id on the remote: None once it is ours there; the Unreachable when
    the remote cannot be reached (the caller goes on locally). Raises Taken when another
    clone holds the id."""
    worker_id = entry.record.id
    ref = refnames.registry(worker_id)
    for _ in range(_PUSH_ATTEMPTS):
        seen = tracked_one(repo, s.remote, worker_id)
        # Ours there already (removed here while the remote was away): replace it.
        lease = seen.oid if seen is not None and ours(seen, s.clone_id) else ""
        try:
            done = _push(repo, s, {ref: entry.oid}, {ref: lease})[ref]
        except Unreachable as e:
            return e
        if done.ok:
            _track(repo, s, worker_id, lease, entry.oid)
            return None
        _rejected(s, ref, done)
        _fetch(repo, s)
        seen = tracked_one(repo, s.remote, worker_id)
        if seen is not None and not ours(seen, s.clone_id):
            raise taken(s, worker_id, seen)
    raise WorkerError(f"'{worker_id}' keeps changing on {s.remote}; try again")


def taken(s: Settings, worker_id: str, seen: Entry | Corrupt) -> Taken:
    if isinstance(seen, Corrupt):
        return Taken(f"worker '{worker_id}' is taken on {s.remote} (its record there is "
                     f"unreadable: {seen.reason})", hint="choose another id")
    r = seen.record
    return Taken(f"worker '{worker_id}' is taken on {s.remote} by {holder(r)}, since "
                 f"{r.created_at} (state {r.state})",
                 hint="choose another id; git worker list --fetch shows the team's workers")


def _rejected(s: Settings, ref: str, done: git.Pushed) -> None:
    """A rejection that is not a lost compare-and-swap (a hook, a protected ref) is an error."""
    if not any(reason in done.summary for reason in _STALE):
        raise WorkerError(f"{s.remote} refused {ref}: {done.summary}",
                          hint=f"check what the remote allows (hooks, receive.deny*) for "
                               f"{refnames.REGISTRY}*")


def publish(repo: Repo, s: Settings, ids: Sequence[str] | None = None) -> Published:
    """Push this clone's records (``ids``, or every one that differs from what the remote
    holds, removals included), each with a lease on what was last published."""
    result = Published()
    _stamp(repo, s, ids)
    with locks.publishing(_team_dir(repo)):
        for _ in range(_PUSH_ATTEMPTS):
            # The view before our records: a push then never puts back an older record of ours
            # than the one a concurrent process of this clone published (its lease is stale).
            if ids is None:  # every record, here and there
                seen = tracked(repo, s.remote)
                local = {i: o for i, o in ((i[len(refnames.REGISTRY):], o) for i, o in
                                           repo.ref_table(refnames.REGISTRY).items())}
                wanted = sorted(set(local) | {i for i, e in seen.items()
                                              if ours(e, s.clone_id)})
            else:  # these alone: their refs and records read from the files
                seen = {i: e for i in ids if (e := tracked_one(repo, s.remote, i)) is not None}
                local = {i: o for i in ids
                         if (o := repo.read_ref(refnames.registry(i))) is not None}
                wanted = list(ids)
            updates: dict[str, str | None] = {}
            leases: dict[str, str] = {}
            for worker_id in wanted:
                mine, there = local.get(worker_id), seen.get(worker_id)
                if there is not None and not ours(there, s.clone_id):
                    if mine is not None and isinstance(there, Entry):
                        result.conflicts[worker_id] = there.record
                    continue
                last = there.oid if there is not None else ""
                if (mine or "") != last:
                    ref = refnames.registry(worker_id)
                    updates[ref], leases[ref] = mine, last
            if not updates:
                return result
            outcome = _push(repo, s, updates, leases)
            stale = False
            for ref, new in updates.items():
                worker_id = ref[len(refnames.REGISTRY):]
                done = outcome.get(ref)
                if done is not None and done.ok:
                    _track(repo, s, worker_id, leases[ref], new)
                    done_list = result.removed if new is None else result.pushed
                    if worker_id not in done_list:
                        done_list.append(worker_id)
                else:
                    if done is not None:
                        _rejected(s, ref, done)
                    stale = True
            if not stale:
                return result
            _fetch(repo, s)  # our view was stale: refresh it, and try again
    raise WorkerError(f"the registry on {s.remote} keeps changing under us; try again: "
                      "git worker publish")


def publish_pending(repo: Repo, s: Settings) -> Published:
    """publish(), of what may be pending alone: the records of ours that differ from what
    the remote was last seen to hold (from one ref table of both), and the ids it holds
    that are gone here, when theirs are ours (removals). Each spawn asks: a full publish
    read every record here and there, twice (~25 ms with ten workers, measured), where
    this reads none when nothing waits but the records of the ids gone here (another
    host's, mostly), from their loose files where they are."""
    mirror = refnames.team(s.remote)
    refs = repo.ref_table(refnames.REGISTRY, mirror)
    local = {r[len(refnames.REGISTRY):]: o for r, o in refs.items()
             if r.startswith(refnames.REGISTRY)}
    there = {r[len(mirror):]: o for r, o in refs.items() if r.startswith(mirror)}
    pending = [i for i, o in local.items() if there.get(i) != o]
    gone = {mirror + i: o for i, o in there.items() if i not in local}
    if gone:
        pending += [e.record.id for e in store.read_tables(repo, [(gone, mirror)],
                                                           loose=True)[0]
                    if isinstance(e, Entry) and ours(e, s.clone_id)]
    return publish(repo, s, sorted(pending)) if pending else Published()


def _stamp(repo: Repo, s: Settings, ids: Sequence[str] | None) -> None:
    """Mark as this clone's the records made before worker.remote was set."""
    entries = store.all_entries(repo) if ids is None else \
        [e for e in map(lambda i: store.read(repo, i), ids) if e is not None]
    for found in entries:
        if isinstance(found, Corrupt) or found.record.clone is not None:
            continue

        def stamp(r: Record) -> None:
            if r.clone is None:
                r.clone = s.identity()

        with deferred():
            store.update(repo, found.record.id, stamp, "team: owned by this clone",
                         current=found)


def publish_branches(repo: Repo, s: Settings, branches: Sequence[str]) -> list[str]:
    """Push workers' branches (refs/heads/…) in one push, each with a lease on the remote
    branch as last fetched (a worker's branch is rewritten by sync --rebase, so a push may
    replace it, but never a commit someone else pushed there). Returns the ones pushed."""
    updates: dict[str, str | None] = {}
    leases: dict[str, str] = {}
    for branch in branches:
        oid = repo.read_ref(branch)
        seen = repo.read_ref(_remote_branch(s, branch)) or ""
        if oid is not None and oid != seen:  # the same commit there already: no push
            updates[branch] = oid
            leases[branch] = seen
    if not updates:
        return []
    outcome = _push(repo, s, updates, leases)
    refused = [f"{refnames.short(b)}: {outcome[b].summary if b in outcome else '?'}"
               for b in updates if b not in outcome or not outcome[b].ok]
    for branch, oid in updates.items():
        if branch in outcome and outcome[branch].ok and oid != leases[branch]:
            tracking, old = _remote_branch(s, branch), leases[branch]
            if old:
                repo.update_ref(tracking, old, str(oid), "git-worker: published")
            else:
                repo.create_ref(tracking, str(oid), "git-worker: published")
    if refused:
        raise WorkerError(f"{s.remote} refused " + "; ".join(refused),
                          hint="someone else pushed there: git worker fetch --branches, "
                               "then look at what they pushed")
    return [refnames.short(b) for b in updates]


def _remote_branch(s: Settings, branch: str) -> str:
    return f"{refnames.REMOTES}{s.remote}/{refnames.short(branch)}"


# --- publishing every change (store.update and remove call after_write) --------------

# Set while a command makes several changes it publishes once at the end (spawn): a flag
# of this process, since store.update is called from everywhere.
_deferred = [0]
_settings: dict[str, Settings | None] = {}
# Repositories whose remote this process found unreachable: its later changes wait for the
# next command instead of each waiting out a connect timeout (worker.fetchTimeout) again.
_gave_up: set[str] = set()


def deferred() -> Deferred:
    """A with block whose record changes after_write leaves unpublished (see _deferred)."""
    return Deferred()


class Deferred:
    """deferred()'s with block. A class, not contextlib.contextmanager: see locks.Flock."""

    def __enter__(self) -> None:
        _deferred[0] += 1

    def __exit__(self, *exc: object) -> None:
        _deferred[0] -= 1


def configured(repo: Repo, config: Config | None = None) -> Settings | None:
    """This repository's team settings, read once per process (None: no worker.remote, or
    a worker.remote that names no remote: the commands that use it say so). ``config``:
    the settings, if the caller has read them already (spares a `git config`)."""
    if repo.common_dir not in _settings:
        from git_worker.config import Config

        try:
            _settings[repo.common_dir] = settings(repo, config or Config.load(repo.common_dir))
        except WorkerError:
            _settings[repo.common_dir] = None
    return _settings[repo.common_dir]


def after_write(repo: Repo, worker_id: str) -> None:
    """Publish a change of one of our records, if there is a team remote. Best effort: an
    unreachable remote leaves it pending (list says so), for the next command to publish."""
    if _deferred[0]:
        return
    s = configured(repo)
    if s is None or repo.common_dir in _gave_up:
        return
    try:
        publish(repo, s, [worker_id])
    except Unreachable:
        _gave_up.add(repo.common_dir)
    except WorkerError:
        pass  # refused, or a conflict: list and fsck say so


def after_exit(repo: Repo, worker_id: str) -> None:
    """When a worker's agent has exited: push its branch to the team's remote (its record
    went with the change that recorded the exit). Unreachable: `git worker publish` later."""
    s = configured(repo)
    found = store.read(repo, worker_id) if s is not None else None
    if s is not None and found is not None:
        publish_branches(repo, s, [found.record.branch])


def claim_unpublished(repo: Repo, entry: Entry) -> None:
    """start's claim: a worker of ours not yet on the remote (spawned while it was away)
    is claimed there before its agent starts; another host that took the id meanwhile makes
    start fail (Taken) with nothing started. Unreachable: start goes on, as spawn does."""
    s = configured(repo)
    if s is None or repo.common_dir in _gave_up:
        return
    seen = tracked_one(repo, s.remote, entry.record.id)
    if seen is not None and ours(seen, s.clone_id):
        return  # published: it is ours there
    if claim(repo, s, entry) is not None:
        _gave_up.add(repo.common_dir)


def foreign_host(repo: Repo, worker_id: str) -> str | None:
    """The name of the host (worker.hostName there) whose worker ``worker_id`` is, as last
    fetched, when it is not ours; None otherwise."""
    if store.read(repo, worker_id) is not None:
        return None
    found = git.config_get_regexp(repo.common_dir, r"^worker\.(remote|hostid)$")
    seen = tracked_one(repo, found["worker.remote"], worker_id) \
        if found.get("worker.remote") else None
    if isinstance(seen, Entry) and not ours(seen, found.get("worker.hostid", "")):
        return str((seen.record.clone or {}).get("name") or seen.record.host)
    return None


def refuse_foreign(repo: Repo, worker_id: str) -> None:
    """Raise the read-only error when ``worker_id`` is another host's worker."""
    for ref, oid in repo.ref_table(refnames.TEAM).items():
        if ref.rpartition("/")[2] != worker_id or not oid:
            continue
        remote = ref[len(refnames.TEAM):].rpartition("/")[0]
        found = tracked_one(repo, remote, worker_id)
        if isinstance(found, Entry):
            clone_id = git.config_get_regexp(repo.common_dir, r"^worker\.hostid$").get(
                "worker.hostid", "")
            if ours(found, clone_id):
                continue  # ours, removed here: not published yet
            raise WorkerError(
                f"worker '{worker_id}' belongs to {holder(found.record)}, seen through "
                f"{remote}: another host's workers are read-only here",
                hint="run the command on that host; git worker list --fetch shows its "
                     "latest state")


def age(at: float | None) -> float | None:
    return None if at is None else max(0.0, time.time() - at)


# --- another host's worker, landed here (merge, review) ---------------------------------

WORKING_STATES = ("spawning", "running", "waiting")


class Theirs:
    """Another host's worker as published on the team's remote, fetched for merge or review
    here: its record (read-only: it stays that host's) with ``branch`` naming the fetched
    copy of its branch (refs/remotes/<remote>/<branch>); ``tip`` is that copy's commit."""

    def __init__(self, record: Record, remote: str, tip: str) -> None:
        self.record = record
        self.remote = remote
        self.tip = tip
        self.host = holder(record)

    @property
    def working(self) -> bool:
        """Whether its agent may still commit, as far as its published state says (its
        processes are on that host: nothing here can look at them)."""
        return self.record.state in WORKING_STATES


def theirs(repo: Repo, config: Config, worker_id: str) -> Theirs | None:
    """When ``worker_id`` is not ours and worker.remote is set: fetch every host's records,
    then — when the id is another host's worker there — its published branch, and return
    it. None when the id is ours, or nobody's (the caller's "no worker" then stands).
    Raises, exit 1, when the remote cannot be reached or the branch is not published."""
    import subprocess

    if store.read(repo, worker_id) is not None:
        return None
    s = settings(repo, config)
    if s is None:
        return None
    try:
        _fetch(repo, s)
    except Unreachable as e:
        raise WorkerError(f"{e.message}: '{worker_id}' is not this clone's worker, and "
                          f"another host's is fetched from {s.remote}", hint=e.hint) from None
    seen = tracked_one(repo, s.remote, worker_id)
    if not isinstance(seen, Entry) or ours(seen, s.clone_id):
        return None
    record = seen.record
    published = f"{refnames.REMOTES}{s.remote}/{refnames.short(record.branch)}"
    from git_worker import base_branch

    try:
        failure = git.fetch_refs(repo.common_dir, s.remote, [f"+{record.branch}:{published}"],
                                 env=base_branch.noninteractive_env(repo, s.timeout),
                                 timeout=s.timeout)
    except subprocess.TimeoutExpired:
        failure = f"timed out after {s.timeout:g} s (worker.fetchTimeout)"
    if failure is not None and base_branch.classify(failure) == base_branch.NO_BRANCH:
        raise WorkerError(
            f"'{worker_id}' is the worker of {holder(record)}, and its branch "
            f"{refnames.short(record.branch)} is not published on {s.remote}",
            hint=f"on that host: git worker publish {worker_id} (its branch is also pushed "
                 "when its agent exits)")
    if failure is not None:
        away = _unreachable(s, failure)
        raise WorkerError(f"cannot fetch the branch of '{worker_id}' from {s.remote}: "
                          f"{away.message}", hint=away.hint)
    tip = repo.read_ref(published)
    assert tip is not None  # fetched just now
    record.branch = published
    here = _reviewed_here(repo, worker_id)
    published_at = str((record.review or {}).get("at") or "")
    if here is not None and str(here.get("at") or "") >= published_at:
        # This clone's review, newer than the one its host published: merge's review rules
        # read it (and, as for any review, a pass counts for the commit it passed).
        record.review = {**(record.review or {}), **here}
    return Theirs(record, s.remote, tip)


def review_log(repo: Repo, worker_id: str) -> str:
    """Where this clone's review of another host's worker logs its gate's output."""
    path = os.path.join(_team_dir(repo), REVIEWS_DIR)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return os.path.join(path, worker_id + REVIEW_LOG_SUFFIX)


def note_review(repo: Repo, worker_id: str, review: dict[str, Any]) -> None:
    """Keep this clone's verdict on another host's worker (its record is that host's)."""
    import json

    path = review_log(repo, worker_id)[:-len(REVIEW_LOG_SUFFIX)] + REVIEW_SUFFIX
    write_atomically(path, json.dumps(review) + "\n")


def _reviewed_here(repo: Repo, worker_id: str) -> dict[str, Any] | None:
    import json

    path = os.path.join(repo.common_dir, TEAM_DIR, REVIEWS_DIR, worker_id + REVIEW_SUFFIX)
    try:
        with open(path, encoding="utf-8") as f:
            found = json.load(f)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


# --- spawn --on: the base, as the team's remote has it ----------------------------------


def published_base(repo: Repo, config: Config, name: str | None) -> str | None:
    """The base to name to a host for ``spawn --on``: the host fetches it from the team's
    remote (worker.remote), so it must be there as it is here. ``name`` (spawn's --from;
    None: the default base) resolved here; a local branch becomes <remote>/<branch>.
    Raises, exit 1, when the remote lacks it, holds another commit, or cannot be reached.
    None without worker.remote (the host resolves the base itself)."""
    import subprocess

    s = settings(repo, config)
    if s is None:
        return None
    from git_worker import base_branch

    found = base_branch.resolve(repo, config, name, fetch=False)
    ref = found.ref or ""
    if ref.startswith(refnames.HEADS):
        there = refnames.HEADS + refnames.short(ref)
    elif ref.startswith(f"{refnames.REMOTES}{s.remote}/"):
        there = refnames.HEADS + ref[len(f"{refnames.REMOTES}{s.remote}/"):]
    elif ref.startswith(refnames.TAGS):
        there = ref
    else:
        return found.name  # a commit, or another remote's branch: the host resolves it
    try:
        refs, failure = git.remote_refs(repo.common_dir, s.remote, [there],
                                        env=base_branch.noninteractive_env(repo, s.timeout),
                                        timeout=s.timeout)
    except subprocess.TimeoutExpired:
        refs, failure = {}, f"timed out after {s.timeout:g} s (worker.fetchTimeout)"
    if failure is not None:
        away = _unreachable(s, failure)
        raise WorkerError(f"cannot check that the base {found.name} is published: "
                          f"{away.message}", hint=away.hint)
    short = refnames.short(there)
    push = f"git push {s.remote} {short}"
    if there not in refs:
        raise WorkerError(f"the base {found.name} is not published on {s.remote}: the host "
                          f"starts its worker from {s.remote}'s copy, and there is none",
                          hint=f"push it first: {push} (or name a base {s.remote} has: "
                               "--from BRANCH)")
    if ref.startswith(refnames.HEADS) and refs[there] != found.oid:
        raise WorkerError(f"the base {found.name} here ({found.oid[:12]}) is not what "
                          f"{s.remote} has ({refs[there][:12]}): the host would start from "
                          f"{s.remote}'s",
                          hint=f"push it first: {push} (or --from {s.remote}/{short} to start "
                               f"from {s.remote}'s)")
    return short if ref.startswith(refnames.TAGS) else f"{s.remote}/{short}"
