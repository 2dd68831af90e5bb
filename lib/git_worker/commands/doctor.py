"""git worker doctor: is everything git-worker needs here, and how to fix what is not."""

from __future__ import annotations

from dataclasses import asdict

from git_worker import doctor, output

_COLOUR = {doctor.OK: "green", doctor.WARN: "yellow", doctor.FAIL: "red"}


def run(*, as_json: bool, hosts: bool = False) -> int:
    checks = doctor.run_checks(hosts=hosts)
    failed = any(c.status == doctor.FAIL for c in checks)
    if as_json:
        output.print_json([asdict(c) for c in checks])
        return 1 if failed else 0
    width = max(len(c.check) for c in checks)
    for c in checks:
        status = output.paint(c.status.ljust(4), _COLOUR[c.status])
        print(f"{status}  {c.check.ljust(width)}  {output.visible(c.detail)}")
        if c.fix and c.status != doctor.OK:
            print(f"      {' ' * width}  fix: {output.visible(c.fix)}")
    warns = sum(c.status == doctor.WARN for c in checks)
    fails = sum(c.status == doctor.FAIL for c in checks)
    print(f"\n{fails} failed, {warns} warning(s)" if fails or warns else "\nall good")
    return 1 if failed else 0
