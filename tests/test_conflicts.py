"""git worker conflicts: forecasts on constructed branches, with nothing touched."""

from __future__ import annotations

import json

from conftest import GitRepo


def build(repo: GitRepo) -> None:
    """a and b both rewrite shared.txt; c is independent; d collides with main itself."""
    repo.commit("shared.txt", "base\n")
    repo.commit("mainfile.txt", "base\n")
    repo.ok("spawn", "a", "b", "c", "d", "--no-launch")  # one process for all four
    repo.work("a", "shared.txt", "from a\n")
    repo.work("b", "shared.txt", "from b\n")
    repo.work("b", "b-only.txt", "b\n")
    repo.work("c", "c.txt", "c\n")
    repo.work("d", "mainfile.txt", "from d\n")
    repo.commit("mainfile.txt", "main moved on\n")


def test_forecast_json(repo: GitRepo) -> None:
    build(repo)
    before = repo.snapshot()
    fc = json.loads(repo.ok("conflicts", "--json").out)
    assert repo.snapshot() == before  # nothing touched: refs, worktrees, files

    against = {w["id"]: (w["clean"], w["paths"]) for w in fc["workers"]}
    assert against == {"a": (True, []), "b": (True, []), "c": (True, []),
                       "d": (False, ["mainfile.txt"])}
    pairs = {(p["a"], p["b"]): (p["clean"], p["paths"]) for p in fc["pairs"]}
    assert pairs[("a", "b")] == (False, ["shared.txt"])
    assert pairs[("a", "c")] == (True, []) and pairs[("b", "c")] == (True, [])
    assert all(clean for (x, y), (clean, _) in pairs.items() if "d" in (x, y))

    [plan] = fc["order"]
    assert plan["target"] == "refs/heads/main"
    assert plan["merge"] == ["c", "a"]  # fewest collisions first; then the oldest
    assert plan["then"] == [{"id": "b", "after": ["a"], "paths": ["shared.txt"]}]
    assert plan["blocked"] == ["d"]


def test_forecast_text_and_suggested_order(repo: GitRepo) -> None:
    build(repo)
    out = repo.ok("conflicts").out
    assert "a ↔ b" in out and "shared.txt" in out
    assert "1. git worker merge c\n  2. git worker merge a\n" in out
    assert "then b: collides with a in shared.txt" in out
    assert "d already conflicts with main: bring it up to date first" in out


def test_the_order_lands(repo: GitRepo) -> None:
    build(repo)
    plan = json.loads(repo.ok("conflicts", "--json").out)["order"][0]
    for wid in plan["merge"]:
        repo.ok("merge", wid)
    assert repo.worker("merge", plan["then"][0]["id"]).code == 1  # as forecast


def test_restricted_to_named_workers(repo: GitRepo) -> None:
    build(repo)
    fc = json.loads(repo.ok("conflicts", "c", "--json").out)
    assert {(p["a"], p["b"]) for p in fc["pairs"]} == {("a", "c"), ("b", "c"), ("c", "d")}
    assert fc["order"][0]["merge"] == ["c"]
    r = repo.worker("conflicts", "nope")
    assert r.code == 1 and "no worker 'nope'" in r.err


def test_merged_workers_are_not_forecast(repo: GitRepo) -> None:
    repo.work("a", "a.txt", "a\n")
    repo.work("b", "b.txt", "b\n")
    repo.ok("merge", "a")
    fc = json.loads(repo.ok("conflicts", "--json").out)
    assert [w["id"] for w in fc["workers"]] == ["b"]


def test_no_workers(repo: GitRepo) -> None:
    assert repo.ok("conflicts").out == "no workers with work waiting to land\n"


def test_only_commands_that_would_succeed_are_suggested(repo: GitRepo, sandbox) -> None:
    repo.git("tag", "v1")
    repo.ok("spawn", "t", "-f", "v1", "--no-launch")
    repo.work("t", "t.txt")
    origin = sandbox.root / "origin.git"
    repo.git("branch", "feature")
    repo.git("clone", "-q", "--bare", str(repo.path), str(origin))
    repo.git("branch", "-D", "feature")
    repo.git("remote", "add", "origin", str(origin))
    repo.git("fetch", "-q", "origin")
    repo.ok("spawn", "r", "-f", "origin/feature", "--no-launch")
    repo.work("r", "r.txt")
    repo.work("blocked", "b.txt")
    repo.work("fine", "f.txt")
    sandbox.script("no-gate", "exit 1")
    repo.git("config", "worker.reviewGate", "no-gate")
    assert repo.worker("review", "blocked").code == 1

    out = repo.ok("conflicts").out
    assert "git worker merge t\n" not in out and "git worker merge r\n" not in out
    assert ("git worker merge t --into BRANCH  (the base v1 is not a branch (a tag?): there is "
            "no branch to merge into)") in out
    assert "suggested order onto v1 (not a local branch: name the branch to land in with " \
           "--into BRANCH)" in out
    assert "git worker merge r --into BRANCH  (the base origin/feature is remote-tracking " \
           "and there is no local branch feature to merge into)" in out
    assert "git worker merge blocked" not in out
    assert "blocked: merge would refuse it now: its last review blocked" in out
    assert "git worker merge fine\n" in out
    assert repo.worker("merge", "t", "--into", "main").code == 0  # the suggestion works
