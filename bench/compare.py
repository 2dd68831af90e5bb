"""Two `make bench` runs side by side: the table of docs/performance.md's "before and after".

    BENCH_JSON=before.json make bench   # in the checkout before
    BENCH_JSON=after.json make bench    # in the checkout after, right after it
    python bench/compare.py before.json after.json

Each cell is a median and, in brackets, its ratio to the floor measured in the same run
(floors move between runs: compare the ratios). A measure one run lacks shows "—".
"""

from __future__ import annotations

import json
import sys
from typing import Any


def cell(measure: dict[str, Any] | None) -> str:
    if measure is None:
        return "—"
    ratio = measure.get("ratio")
    return f"{measure['ms']:.0f} ms" + (f" ({ratio:.2f}×)" if ratio is not None else "")


def table(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    old = {m["name"]: m for m in before["measures"]}
    rows = ["| measure | floor | before | after | target | met |", "|---|---|---|---|---|---|"]
    for m in after["measures"]:
        target = (m["target"] or "—").replace("<=", "≤").replace("x", "×")
        met = "—" if not m["target"] else "yes" if m["met"] else "**no**"
        rows.append(f"| {m['name']} | {m['floor_name'] or '—'} | {cell(old.get(m['name']))} "
                    f"| {cell(m)} | {target} | {met} |")
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    runs = []
    for path in argv:
        with open(path, encoding="utf-8") as f:
            runs.append(json.load(f))
    for label, run in zip(("before", "after"), runs, strict=True):
        print(f"{label}: " + "; ".join(run["header"][1:]))
    print("\n".join(table(*runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
