"""make demo's script, end to end, from a copy of the checkout (it writes ./demo)."""

from __future__ import annotations

import shutil

from conftest import CHECKOUT, Sandbox


def test_demo_runs_and_cleans_up(sandbox: Sandbox) -> None:
    checkout = sandbox.root / "checkout"
    shutil.copytree(CHECKOUT, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv", "demo", "build", "*.egg-info", "__pycache__", ".*_cache"))
    env = {"PYTHONPATH": str(checkout / "lib")}  # for demo.sh's `python3`, like .venv's

    r = sandbox.run("bash", checkout / "demo.sh", env=env, timeout=120)
    assert r.code == 0, r.out + r.err
    assert "==> When they are done: two exited, one failed" in r.out
    done = r.out[r.out.index("two exited, one failed"):r.out.index("(its log)")]
    states = {line.split()[0]: line.split()[1] for line in done.splitlines()
              if line.startswith("shop-")}
    assert states == {"shop-a1f": "exited", "shop-b7k": "exited", "shop-c3x": "failed"}
    assert "shop-a1f ↔ shop-b7k  CONFLICT  shop/prices.py" in r.out  # the forecast
    # Landed through the merge queue (issue 13: land instead of merging one by one).
    assert "shop-a1f  landed" in r.out
    assert "shop-b7k  skipped  main  conflicts with main + shop-a1f in shop/prices.py" in r.out
    assert "removed shop-a1f: merged into main by git-worker" in r.out  # prune
    assert "kept shop-b7k: not merged" in r.out and "freed " in r.out
    assert "refusing to remove 'shop-b7k'" in r.err  # errors go to stderr
    assert "removed shop-b7k (branch kept)" in r.out
    assert "FAILED tests/test_prices.py::test_total" in r.out  # the failed agent's log
    assert "Add discount(price, percent)" in r.out  # the successful agent's commit
    assert "Remove it with: make demo-clean" in r.out
    assert "\x1b[" not in r.out  # not a terminal: no colour
    assert (checkout / "demo" / "shop" / ".git").is_dir()

    r = sandbox.run("bash", checkout / "demo.sh", "--clean", env=env)
    assert r.code == 0, r.err
    assert not (checkout / "demo").exists()
