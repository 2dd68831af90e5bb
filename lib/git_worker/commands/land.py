"""git worker land: the merge queue (see git_worker.land)."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from git_worker import land, output, refnames
from git_worker.config import Config
from git_worker.errors import UsageError
from git_worker.repo import Repo


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM ends land as ^C does: cleanly, target at the last pass


def run(repo: Repo, config: Config, ids: list[str], *, all_workers: bool, batch: bool,
        into: str | None, dry_run: bool, as_json: bool) -> int:
    if bool(ids) == all_workers:
        raise UsageError("name the workers to land (git worker land ID…), or pass --all")
    signal.signal(signal.SIGTERM, _interrupted)
    results = land.land(repo, config, ids, into=into, batch=batch, dry_run=dry_run)
    if as_json:
        output.print_json([r.as_json() for r in results])
    elif not results:
        print("nothing to land: no worker has commits waiting")
    else:
        colours = {land.LANDED: "green", land.BLOCKED: "red", land.SKIPPED: "yellow"}
        rows = [[r.id, output.paint(r.result, colours.get(r.result, "dim")),
                 refnames.short(r.into) if r.into else "-", r.why] for r in results]
        print(output.table(["WORKER", "RESULT", "INTO", "WHY"], rows))
        done = [r for r in results if r.result == land.LANDED]
        if done:
            tips = {r.into: r.commit for r in done}
            for into_ref, commit in tips.items():
                print(f"{refnames.short(into_ref or '')} is now at {(commit or '')[:12]}")
            print(f"next: git worker prune  (removes the {len(done)} landed worker(s))",
                  file=sys.stdout)
    failed = [r for r in results if r.result in (land.BLOCKED, land.SKIPPED)]
    return 1 if failed else 0
