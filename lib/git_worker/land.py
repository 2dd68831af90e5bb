"""The merge queue: the target only ever moves to a result that passed the review gate.

For each worker, in the order `conflicts` suggests (docs/review-and-land.md):
1. build the commit the target would have — the same merge as `git worker merge`
   (merge.result_commit), on top of the target as it is now, which includes the workers
   landed before it in this queue;
2. check it out in a scratch worktree (scratch.checkout: a temporary directory, not any
   worktree of the user's) and run the review gate there;
3. if it passed, move the target to exactly that commit (compare-and-swap; a worktree that
   has the target checked out is updated as by `merge`) and record the worker merged; if
   it failed, record `review: blocked (combined with …)` and go on with the next one.
A worker whose agent still runs is skipped; merge's review rules are not applied (a past
verdict on the branch alone): the gate runs here, on what will actually land.
With ``batch``, every worker of a target is combined into one result and tested once;
when that fails, the batch is split in halves, each landed the same way (bisection), so
a failing worker costs log2(n) extra runs instead of n.

An interruption (^C, SIGTERM, SIGKILL) leaves the target at the last result that passed:
the move and its record happen with those signals held back, and the scratch worktree is
removed by its reaper whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import asdict, dataclass, field
from typing import Any

from git_worker import conflicts, locks, merge, refnames, review, scratch, team, worktrees
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.registry import store
from git_worker.registry.record import Record, now
from git_worker.registry.runtime import RuntimeDir
from git_worker.repo import Repo

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

LANDED, BLOCKED, SKIPPED = "landed", "blocked", "skipped"
WOULD_TEST = "would test"  # --dry-run
_CAS_ATTEMPTS = 5


@dataclass
class Result:
    id: str
    result: str  # landed, blocked, skipped (or "would test" on a dry run)
    why: str
    into: str | None = None  # refs/heads/…
    commit: str | None = None  # what the target moved to (landed) or what failed (blocked)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Item:
    record: Record
    tip: str
    commit: str = ""  # the result commit once built
    kind: str = ""
    elsewhere: bool = False  # another host's worker (team.theirs): its record is not ours


@dataclass
class _Queue:
    target: str
    items: list[_Item] = field(default_factory=list)


def land(repo: Repo, config: Config, ids: list[str], *, into: str | None, batch: bool,
         dry_run: bool) -> list[Result]:
    """Land ``ids`` (all workers with work waiting when empty); one Result per worker."""
    results: list[Result] = []
    queues = _queues(repo, config, ids, into, results)
    if not queues:
        return results
    if not dry_run:
        argv = review.gate_argv(config)
        if review.locate(argv, repo.main_worktree) is None:
            raise review.missing_gate_error(argv)
        for q in queues:
            _refuse_dirty_holder(repo, q.target)
    with locks.merge(repo):
        for q in queues:
            if dry_run:
                results += _dry_run(repo, q)
            elif batch:
                results += _batch(repo, config, q.target, q.items, [])
            else:
                landed: list[str] = []
                for item in q.items:
                    results += _batch(repo, config, q.target, [item], landed)
    return results


def _queues(repo: Repo, config: Config, ids: list[str], into: str | None,
            results: list[Result]) -> list[_Queue]:
    """Workers to land, grouped by target in the order `conflicts` suggests; the ones that
    cannot be tried are added to ``results`` as skipped."""
    named = list(dict.fromkeys(ids))
    # Other hosts' workers (worker.remote), named: their published branches, fetched.
    elsewhere = {t.record.id: t for t in (team.theirs(repo, config, w) for w in named) if t}
    wanted = [w for w in named if w not in elsewhere]
    waiting = {c.id: c for c in conflicts.candidates(repo, [])}
    for wid in wanted:
        if wid not in waiting:
            state = store.get(repo, wid).record.state  # raises "no worker" for a typo
            results.append(Result(wid, SKIPPED, f"nothing to land (state {state})"))
    chosen = [w for w in wanted if w in waiting] if named else list(waiting)
    if not chosen and not elsewhere:
        return []
    order: list[str] = []
    if chosen:
        for plan in conflicts.forecast(repo, chosen).plans:
            order += [*plan.merge, *(t["id"] for t in plan.then), *plan.blocked]
    order += [w for w in chosen if w not in order]  # already in their target
    queues: dict[str, _Queue] = {}
    for wid in [*order, *elsewhere]:
        theirs = elsewhere.get(wid)
        record = theirs.record if theirs else store.get(repo, wid).record
        tip = repo.read_ref(record.branch)
        if tip is None:
            results.append(Result(wid, SKIPPED, "its branch is missing (git worker fsck)"))
            continue
        try:
            target = merge.target_ref(repo, record, into)
        except WorkerError as e:
            results.append(Result(wid, SKIPPED, e.message + "; pass --into BRANCH"))
            continue
        # merge's review rules do not apply: land runs the gate itself, on the result as it
        # will be. What does: an agent that may still commit.
        if theirs.working if theirs else merge.still_working(repo, record):
            results.append(Result(wid, SKIPPED, f"its agent is still {record.state} and may "
                                                f"commit more (git worker stop {wid} first)",
                                  target))
            continue
        queues.setdefault(target, _Queue(target)).items.append(
            _Item(record, tip, elsewhere=theirs is not None))
    return list(queues.values())


def _refuse_dirty_holder(repo: Repo, target: str) -> None:
    for holder in worktrees.holders(repo, target):
        if worktrees.changed_tracked(repo, holder, store.owner_runtime(repo, holder)):
            raise WorkerError(
                f"{refnames.short(target)} is checked out in {holder}, which has uncommitted "
                "changes; nothing was changed",
                hint="commit or stash them there first, or land elsewhere with --into BRANCH")


def _build(repo: Repo, target: str, start: str, items: list[_Item], results: list[Result],
           landed: list[str]) -> tuple[str, list[_Item]]:
    """Merge ``items`` one after another onto ``start``: the last result and the items in
    it. An item that conflicts, or is in the target already, is left out (and reported)."""
    current, built = start, list[_Item]()
    for item in items:
        wid = item.record.id
        if merge.is_ancestor(repo, item.tip, current):
            results.append(Result(wid, SKIPPED, f"already in {refnames.short(target)}", target))
            continue
        try:
            new, kind = merge.result_commit(repo, item.record, target, current, item.tip, False)
        except merge.Conflict as c:
            others = [*landed, *(i.record.id for i in built)]
            with_what = f"{refnames.short(target)}" + (f" + {', '.join(others)}" if others else "")
            results.append(Result(wid, SKIPPED, f"conflicts with {with_what} in "
                                                f"{', '.join(c.paths)}", target))
            continue
        item.commit, item.kind, current = new, kind, new
        built.append(item)
    return current, built


def _batch(repo: Repo, config: Config, target: str, items: list[_Item],
           landed: list[str]) -> list[Result]:
    """Land ``items`` together if their combined result passes; else bisect."""
    for _ in range(_CAS_ATTEMPTS):
        old = repo.read_ref(target)
        if old is None:
            raise WorkerError(f"branch {refnames.short(target)} disappeared")
        attempt: list[Result] = []
        result, built = _build(repo, target, old, items, attempt, landed)
        if not built:
            return attempt
        ids = [i.record.id for i in built]
        code = _gate(repo, config, target, old, result, built, landed)
        if code != 0 and len(built) > 1:
            half = len(built) // 2
            first = _batch(repo, config, target, built[:half], landed)
            return attempt + first + _batch(repo, config, target, built[half:], landed)
        if code != 0:
            _record_blocked(repo, built[0], result, code, landed, target, _log(repo, built[0]))
            combined = ", ".join(landed) or f"{refnames.short(target)} at {old[:12]}"
            why = ("the gate ran out of time" if code is None else f"the gate exited {code}")
            return attempt + [Result(ids[0], BLOCKED, f"{why} combined with {combined}",
                                               target, result)]
        with _signals_held():
            moved, _ = merge.move_target(repo, target, old, result,
                                         f"git worker land {' '.join(ids)}")
            if moved:
                for item in built:
                    others = [i for i in ids if i != item.record.id]
                    if item.elsewhere:  # its record is its host's: the verdict stays here
                        team.note_review(repo, item.record.id, _verdict(
                            review.PASSED, 0, item, result, [*landed, *others]))
                        continue
                    landing = merge.Landed(item.record.id, target, old, item.commit, item.kind,
                                           None)
                    merge.record_merged(repo, config, item.record, item.tip, landing)
                    _record_passed(repo, item, result, [*landed, *others], _log(repo, item))
        if moved:
            landed += ids
            return attempt + [
                Result(i.record.id, LANDED, f"{i.kind}; the gate passed on {result[:12]}",
                       target, i.commit) for i in built]
        # The target moved meanwhile (a commit made there by hand): build and test again.
    raise WorkerError(f"{refnames.short(target)} keeps moving while landing; try again")


def _gate(repo: Repo, config: Config, target: str, old: str, result: str, built: list[_Item],
          landed: list[str]) -> int | None:
    ids = [i.record.id for i in built]
    with scratch.checkout(repo, result) as path:
        return review.run_on(repo, config, built[-1].record, checkout=path, commit=result,
                             target=refnames.short(target), target_oid=old,
                             landing=[*landed, *ids], log_path=_log(repo, built[-1]))


def _log(repo: Repo, item: _Item) -> str:
    """Where land logs the gate runs for ``item``: its runtime dir, or for another host's
    worker this clone's review log of it (team.review_log)."""
    if item.elsewhere:
        return team.review_log(repo, item.record.id)
    runtime = RuntimeDir.of(repo, item.record.id)
    os.makedirs(runtime.path, exist_ok=True)
    return runtime.land_log


def _verdict(status: str, code: int | None, item: _Item, result: str,
             combined_with: list[str]) -> dict[str, Any]:
    return {"status": status, "at": now(), "commit": item.tip, "exit_code": code,
            "combined_with": combined_with, "result": result}


def _record_blocked(repo: Repo, item: _Item, result: str, code: int | None, landed: list[str],
                    target: str, log: str) -> None:
    combined = ", ".join(landed) or refnames.short(target)
    status = review.BLOCKED if code is not None else review.ERROR
    if item.elsewhere:
        team.note_review(repo, item.record.id, _verdict(
            status, code, item, result, list(landed) or [refnames.short(target)]))
        return
    outcome = review.Outcome(status, code, log, item.tip)
    review.record(repo, item.record.id, outcome, f"review: blocked (combined with {combined})",
                  combined_with=list(landed) or [refnames.short(target)], result=result)


def _record_passed(repo: Repo, item: _Item, result: str, landed: list[str], log: str) -> None:
    outcome = review.Outcome(review.PASSED, 0, log, item.tip)
    event = "review: passed" + (f" (combined with {', '.join(landed)})" if landed else "")
    review.record(repo, item.record.id, outcome, event, combined_with=list(landed),
                  result=result)


def _dry_run(repo: Repo, q: _Queue) -> list[Result]:
    results: list[Result] = []
    old = repo.read_ref(q.target) or ""
    _, built = _build(repo, q.target, old, q.items, results, [])
    into = refnames.short(q.target)
    for n, item in enumerate(built):
        after = ", ".join(b.record.id for b in built[:n])
        results.append(Result(item.record.id, WOULD_TEST,
                              f"{item.kind} onto {into}" + (f" after {after}" if after else ""),
                              q.target, item.commit))
    return results


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """^C and SIGTERM wait until the target has moved *and* the merge is recorded."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
