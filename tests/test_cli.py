"""Exit codes and the shape of errors: 0 ok, 1 failed, 2 usage, 3 internal, 130 interrupted."""

from __future__ import annotations

from conftest import GitRepo


def test_usage_errors_exit_2(repo: GitRepo) -> None:
    r = repo.worker("spawn", "--bogus")
    assert r.code == 2 and "unrecognized arguments: --bogus" in r.err
    assert repo.worker("frobnicate").code == 2
    assert repo.worker().code == 2


def test_expected_failures_exit_1_without_traceback(repo: GitRepo) -> None:
    r = repo.worker("show", "nope")
    assert r.code == 1
    assert r.err == "error: no worker 'nope'\nhint: git worker list shows the workers\n"


def test_no_ids_is_an_error_with_a_hint(repo: GitRepo) -> None:
    r = repo.worker("spawn")
    assert r.code == 1 and "no task ids given" in r.err


def test_old_flag_spellings_still_work(repo: GitRepo) -> None:
    repo.ok("spawn", "-t", "w1", "--fromBranch", "main", "--noFetch", "--no-launch")
    assert repo.record("w1")["base"]["name"] == "main"


def test_internal_errors_exit_3_and_ask_for_a_report(repo: GitRepo) -> None:
    # A registry ref pointing at a missing object is not something a user can cause
    # through git-worker; reading it must not crash list, but show's history walk is
    # the simplest place where an unexpected exception surfaces.
    repo.ok("spawn", "w1", "--no-launch")
    (repo.path / ".git" / "refs" / "workers" / "w1").write_text("0" * 40 + "\n")
    r = repo.worker("show", "w1", "--history")
    assert r.code == 1
    assert "unreadable" in r.err
