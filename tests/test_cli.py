"""Exit codes and the shape of errors: 0 ok, 1 failed, 2 usage, 3 internal, 130 interrupted."""

from __future__ import annotations

import json

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


def test_internal_errors_exit_3_ask_for_a_report_and_still_roll_back(repo: GitRepo) -> None:
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch",
                    env={"GIT_WORKER_FAILPOINTS": "spawn.worktree:crash"})
    assert r.code == 3
    assert r.err.startswith("git-worker: internal error: RuntimeError: failpoint spawn.worktree")
    assert "GIT_WORKER_DEBUG=1" in r.err and "Traceback" not in r.err
    assert repo.snapshot() == before
    r = repo.worker("spawn", "w1", "--no-launch", env={
        "GIT_WORKER_FAILPOINTS": "spawn.worktree:crash", "GIT_WORKER_DEBUG": "1"})
    assert r.code == 3 and "Traceback (most recent call last)" in r.err


def test_a_record_pointing_at_a_missing_object_is_reported(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    (repo.path / ".git" / "refs" / "workers" / "w1").write_text("1" * 40 + "\n")
    listed = json.loads(repo.ok("list", "--json").out)
    assert listed[0]["state"] == "corrupt"
    assert "missing object" in listed[0]["problems"][0]
    r = repo.worker("show", "w1")
    assert r.code == 1 and "the registry record of 'w1' is unreadable" in r.err
