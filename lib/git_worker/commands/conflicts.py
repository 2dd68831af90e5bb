"""git worker conflicts: which workers collide with their target and with each other."""

from __future__ import annotations

from git_worker import conflicts, output, refnames
from git_worker.config import Config
from git_worker.repo import Repo


def _paths(paths: list[str], limit: int = 4) -> str:
    shown = ", ".join(output.visible(p) for p in paths[:limit])  # file names: anyone's
    return shown + (f", … ({len(paths)} paths)" if len(paths) > limit else "")


def run(repo: Repo, config: Config, *, ids: list[str], as_json: bool) -> int:
    # config: the review rules, so that only commands that would succeed are suggested.
    fc = conflicts.forecast(repo, list(dict.fromkeys(ids)), config)
    if as_json:
        output.print_json(fc.as_json())
        return 0
    if not fc.workers:
        print("no workers with work waiting to land")
        return 0
    rows = []
    for c in fc.workers:
        into = refnames.short(c.target)
        if c.merged:
            rows.append([c.id, output.visible(into), "already merged", ""])
        else:
            verdict = "clean" if c.clean else output.paint("CONFLICT", "red")
            rows.append([c.id, output.visible(into), verdict, _paths(c.paths)])
    print(output.table(["WORKER", "INTO", "AGAINST ITS TIP", "PATHS"], rows))

    clashes = [p for p in fc.pairs if not p.clean]
    print()
    if not fc.pairs:
        print("no pairs of workers land in the same branch")
    elif not clashes:
        print(f"all {len(fc.pairs)} pair(s) of workers merge cleanly with each other")
    else:
        print(output.table(["PAIR", "RESULT", "PATHS"],
                           [[f"{p.a} ↔ {p.b}", output.paint("CONFLICT", "red"), _paths(p.paths)]
                            for p in clashes]))
        rest = len(fc.pairs) - len(clashes)
        if rest:
            print(f"({rest} other pair(s) merge cleanly)")

    by_id = {c.id: c for c in fc.workers}
    for plan in fc.plans:
        into = refnames.short(plan.target)
        branch = plan.target.startswith(refnames.HEADS)
        print(f"\nsuggested order into {into}:" if branch else
              f"\nsuggested order onto {into} (not a local branch: name the branch to land "
              "in with --into BRANCH):")
        ready = []
        for n, wid in enumerate(plan.merge, 1):
            found = by_id.get(wid)
            if found is not None and found.refused:
                print(f"  {n}. {wid}: merge would refuse it now: {'; '.join(found.refused)}")
            elif found is not None and found.needs_into:
                print(f"  {n}. git worker merge {wid} --into BRANCH  ({found.needs_into})")
            else:
                print(f"  {n}. git worker merge {wid}")
                ready.append(wid)
        if branch and len(ready) > 1:
            print(f"  (or all at once, each gated as it will land: "
                  f"git worker land {' '.join(ready)})")
        for later in plan.then:
            after = ", ".join(later["after"]) or "the ones above"
            print(f"  then {later['id']}: collides with {after} in {_paths(later['paths'])}; "
                  f"after those land, bring it up to date: git worker sync {later['id']} "
                  "--agent")
        for wid in plan.blocked:
            print(f"  {wid} already conflicts with {into}: bring it up to date first: "
                  f"git worker sync {wid} --agent")
    return 0
