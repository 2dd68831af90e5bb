"""Conflict forecast: which workers' branches will collide, before anyone merges.

Every merge here is `git merge-tree --write-tree` (objects only; no index, no worktree is
touched): each live worker against the current tip of the branch it would land in, and
each pair of workers that land in the same branch. Then a landing order is simulated:
workers that collide least go first, each merged onto the result of the ones before it,
so the order printed is one that lands cleanly as far as it goes. The simulation writes
a few unreferenced commit objects (merge results); `git gc` drops them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from git_worker import git, merge, refnames
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.registry import store
from git_worker.registry.record import Corrupt, State
from git_worker.repo import Repo

# States whose branch no longer waits to land.
_DONE = (State.MERGED, State.SPAWNING)


@dataclass
class Candidate:
    id: str
    branch: str
    tip: str
    target: str  # refs/heads/… it would land in
    created_at: str
    merged: bool = False  # its tip is already in the target
    clean: bool = True  # against the target's current tip
    paths: list[str] = field(default_factory=list)
    needs_into: str | None = None  # why `merge` needs --into (a tag or remote-only base)
    refused: list[str] = field(default_factory=list)  # why `merge` would refuse it now


@dataclass
class Pair:
    a: str
    b: str
    target: str
    clean: bool
    paths: list[str]


@dataclass
class Plan:
    target: str
    merge: list[str] = field(default_factory=list)  # lands cleanly in this order
    then: list[dict[str, Any]] = field(default_factory=list)  # needs updating after those
    blocked: list[str] = field(default_factory=list)  # conflicts with the target already


@dataclass
class Forecast:
    workers: list[Candidate]
    pairs: list[Pair]
    plans: list[Plan]

    def as_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"workers": [asdict(w) for w in self.workers],
                "pairs": [asdict(p) for p in self.pairs],
                "order": [asdict(p) for p in self.plans]}


def candidates(repo: Repo, ids: list[str], config: Config | None = None) -> list[Candidate]:
    """Workers with commits waiting to land; with ``config``, each says whether `merge`
    would refuse it now (review, running agent)."""
    found = []
    for item in store.all_entries(repo):
        if isinstance(item, Corrupt):
            continue
        r = item.record
        if r.state in _DONE:
            continue
        tip = repo.read_ref(r.branch)
        if tip is None or tip == r.base.get("oid"):
            continue  # no branch, or no commit of its own yet: nothing to land
        needs_into = None
        try:
            target = merge.target_ref(repo, r, None)
        except WorkerError as e:
            target = r.base.get("ref") or refnames.HEADS + r.base["name"]
            needs_into = e.message
        refused = merge.refusals(repo, config, r, tip) if config is not None else []
        found.append(Candidate(r.id, r.branch, tip, target, r.created_at, needs_into=needs_into,
                               refused=refused))
    unknown = [i for i in ids if i not in {c.id for c in found}]
    for i in unknown:
        entry = store.get(repo, i)  # raises "no worker" for a typo
        raise WorkerError(f"'{i}' has nothing to land (state {entry.record.state})")
    return found


def forecast(repo: Repo, ids: list[str], config: Config | None = None) -> Forecast:
    workers = candidates(repo, ids, config)
    tips = {c.target: repo.read_ref(c.target) for c in workers}
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        def against_target(c: Candidate) -> None:
            target_tip = tips[c.target]
            if target_tip is None:
                c.clean, c.paths = False, [f"(branch {refnames.short(c.target)} is missing)"]
                return
            if merge.is_ancestor(repo, c.tip, target_tip):
                c.merged = True
                return
            result = merge.merge_trees(repo, target_tip, c.tip)
            c.clean, c.paths = result.clean, result.conflicts

        list(pool.map(against_target, workers))
        pending = [c for c in workers if not c.merged]
        wanted = set(ids)
        todo = [(a, b) for i, a in enumerate(pending) for b in pending[i + 1:]
                if a.target == b.target and (not wanted or a.id in wanted or b.id in wanted)]

        def pair(ab: tuple[Candidate, Candidate]) -> Pair:
            a, b = ab
            result = merge.merge_trees(repo, a.tip, b.tip)
            return Pair(a.id, b.id, a.target, result.clean, result.conflicts)

        pairs = list(pool.map(pair, todo))

    shown = [c for c in workers if not wanted or c.id in wanted
             or any(c.id in (p.a, p.b) for p in pairs)]
    plans = [_plan(repo, target, [c for c in pending if c.target == target
                                  and (not wanted or c.id in wanted)], pairs, tips[target])
             for target in sorted({c.target for c in pending})]
    return Forecast(shown, pairs, [p for p in plans if p.merge or p.then or p.blocked])


def _plan(repo: Repo, target: str, group: list[Candidate], pairs: list[Pair],
          target_tip: str | None) -> Plan:
    plan = Plan(target)
    plan.blocked = [c.id for c in group if not c.clean]
    ready = [c for c in group if c.clean]

    def degree(c: Candidate) -> int:
        return sum(1 for p in pairs if not p.clean and c.id in (p.a, p.b))

    ready.sort(key=lambda c: (degree(c), c.created_at, c.id))
    current = target_tip
    landed: list[str] = []
    for c in ready:
        if current is None:
            break
        if merge.is_ancestor(repo, current, c.tip):
            current = c.tip
            plan.merge.append(c.id)
            landed.append(c.id)
            continue
        result = merge.merge_trees(repo, current, c.tip)
        if result.clean:
            current = _simulated_commit(repo, result.tree, current, c.tip)
            plan.merge.append(c.id)
            landed.append(c.id)
        else:
            partners = sorted({p.b if p.a == c.id else p.a for p in pairs
                               if not p.clean and c.id in (p.a, p.b)} & set(landed))
            plan.then.append({"id": c.id, "after": partners, "paths": result.conflicts})
    return plan


def _simulated_commit(repo: Repo, tree: str, first: str, second: str) -> str:
    # A fixed identity: a forecast must not fail for want of user.name, nor look like
    # anyone's work. The commit is referenced by nothing.
    who = {"NAME": "git-worker", "EMAIL": "git-worker@localhost"}
    env = git.clean_env({f"GIT_{role}_{k}": v for role in ("AUTHOR", "COMMITTER")
                         for k, v in who.items()})
    return git.commit_tree(repo.common_dir, tree, [first, second], "forecast\n", env=env)
