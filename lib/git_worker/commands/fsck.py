"""git worker fsck: print what fsck.check finds (and with --repair, fixes)."""

from __future__ import annotations

from dataclasses import asdict

from git_worker import config as config_mod
from git_worker import fsck, output
from git_worker.repo import Repo


def run(repo: Repo, config: config_mod.Config, *, repair: bool, as_json: bool) -> int:
    findings = fsck.check(repo, config, repair=repair)
    if as_json:
        output.print_json([asdict(f) for f in findings])
    elif not findings:
        print("ok: registry, branches and worktrees agree")
    else:
        for f in findings:
            who = f"{f.id}: " if f.id else ""
            if f.repaired:
                line = f"repaired: {who}{f.problem} ({f.repair})"
            elif f.repair:
                line = f"problem: {who}{f.problem} (--repair would: {f.repair})"
            else:
                line = f"problem: {who}{f.problem} (needs you: {fsck.needs_you(f)})"
            print(output.visible(line, lines=True))
    return 1 if any(not f.repaired for f in findings) else 0
