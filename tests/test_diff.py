"""git worker diff: the worker's change against where it lands, options passed to git."""

from __future__ import annotations

from conftest import GitRepo


def test_diff_shows_only_the_workers_change_and_takes_git_options(repo: GitRepo) -> None:
    repo.work("w1", "feature.txt", "new\n")
    repo.commit("other.txt", "landed meanwhile\n")  # main moved on: not the worker's change
    r = repo.ok("diff", "w1")
    assert "+++ b/feature.txt" in r.out and "+new" in r.out
    assert "other.txt" not in r.out
    assert repo.ok("diff", "w1", "--stat").out.strip().startswith("feature.txt | 1 +")
    assert repo.ok("diff", "w1", "--name-only").out == "feature.txt\n"
    coloured = repo.ok("diff", "w1", "--color=always").out
    assert "\x1b[" in coloured


def test_diff_of_a_remote_tracking_base_is_against_the_local_branch(repo: GitRepo, sandbox) -> None:
    origin = sandbox.root / "origin.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(origin))
    repo.git("remote", "add", "origin", str(origin))
    repo.git("fetch", "-q", "origin")
    repo.ok("spawn", "w1", "-f", "origin/main", "--no-launch")
    repo.work("w1", "f.txt")
    assert repo.ok("diff", "w1", "--name-only").out == "f.txt\n"


def test_diff_unknown_worker(repo: GitRepo) -> None:
    r = repo.worker("diff", "nosuch")
    assert r.code == 1 and "nosuch" in r.err and r.out == ""
