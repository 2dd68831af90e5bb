"""git worker review: scripted gates that pass, block, or are missing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

from conftest import GitRepo, Sandbox, alive, wait_for


def test_passing_gate_records_review_and_sees_the_worker(repo: GitRepo, sandbox: Sandbox) -> None:
    sandbox.script("review-gate", """
        echo "gate: $GIT_WORKER_ID $GIT_WORKER_BRANCH $GIT_WORKER_BASE in $(basename "$PWD")"
        test "$GIT_WORKER_WORKTREE" = "$PWD" && test -n "$GIT_WORKER_COMMIT"
    """)
    tip = repo.work("w1", "work.txt")
    r = repo.worker("review", "w1")
    assert r.code == 0, r.err
    assert "gate: w1 refs/heads/worker/w1 main in w1" in r.out
    assert "passed: w1 may be merged" in r.out
    record = repo.record("w1")
    assert record["state"] == "reviewed"
    assert record["review"]["status"] == "passed"
    assert record["review"]["commit"] == tip
    assert record["review"]["exit_code"] == 0
    log = (repo.path / ".git" / "workers" / "w1" / "review.log").read_text()
    assert "gate: w1" in log and "[exit 0]" in log
    assert repo.git("log", "-1", "--format=%s", "refs/workers/w1") == "review: passed"


def test_blocking_gate_exits_1_and_records_blocked(repo: GitRepo, sandbox: Sandbox) -> None:
    sandbox.script("review-gate", """
        echo "2 tests failed"
        exit 3
    """)
    repo.work("w1", "work.txt")
    r = repo.worker("review", "w1")
    assert r.code == 1
    assert "2 tests failed" in r.out
    assert "blocked: the review gate exited 3 for w1" in r.err
    record = repo.record("w1")
    assert record["review"]["status"] == "blocked" and record["review"]["exit_code"] == 3
    assert record["state"] == "ready"


def test_a_later_block_takes_reviewed_away(repo: GitRepo, sandbox: Sandbox) -> None:
    sandbox.script("review-gate", 'exit "$(cat "$HOME/verdict")"')
    (sandbox.home / "verdict").write_text("0")
    repo.work("w1", "work.txt")
    repo.ok("review", "w1")
    assert repo.record("w1")["state"] == "reviewed"
    (sandbox.home / "verdict").write_text("1")
    assert repo.worker("review", "w1").code == 1
    assert repo.record("w1")["state"] == "ready"


def test_missing_gate_gives_setup_guidance(repo: GitRepo) -> None:
    repo.work("w1", "work.txt")
    r = repo.worker("review", "w1")
    assert r.code == 1
    assert "review gate 'review-gate' not found on PATH" in r.err
    assert "A review gate is a command you choose" in r.err
    assert "git config worker.reviewGate" in r.err
    assert "git config worker.review false" in r.err
    assert repo.record("w1")["review"]["status"] == "error"


def test_gate_over_its_time_is_stopped_with_its_children(repo: GitRepo,
                                                         sandbox: Sandbox) -> None:
    pids = sandbox.root / "pids"
    sandbox.script("review-gate", f"""
        sleep 300 &
        echo "$$ $!" > "{pids}"
        echo "checking..."
        sleep 300
    """)
    repo.git("config", "worker.reviewTimeout", "2")
    repo.work("w1", "work.txt")
    r = repo.worker("review", "w1")
    assert r.code == 1
    assert "checking..." in r.out
    assert ("the review gate of 'w1' ran longer than worker.reviewTimeout (2 s) and was "
            "stopped" in r.err)
    assert "hint: make the gate faster, or allow it more time" in r.err
    wait_for(lambda: all(not alive(int(pid)) for pid in pids.read_text().split()))  # SIGKILLed
    review = repo.record("w1")["review"]
    assert review["status"] == "error" and review["exit_code"] is None
    log = (repo.path / ".git" / "workers" / "w1" / "review.log").read_text()
    assert "[stopped: still running after 2 s]" in log
    assert repo.git("log", "-1", "--format=%s", "refs/workers/w1") == "review: error"


def test_interrupted_review_stops_the_gate(repo: GitRepo, sandbox: Sandbox) -> None:
    pids = sandbox.root / "pids"
    sandbox.script("review-gate", f"""
        sleep 300 &
        echo "$$ $!" > "{pids}"
        sleep 300
    """)
    repo.work("w1", "work.txt")
    # A terminal's ^C: SIGINT to the foreground process group, which the gate is not in.
    review = subprocess.Popen(["git", "worker", "review", "w1"], cwd=repo.path,
                              env=sandbox.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True)
    wait_for(pids.exists)
    time.sleep(0.2)  # the pid file is written; let the shell get to `sleep`
    os.killpg(review.pid, signal.SIGINT)
    _, err = review.communicate(timeout=30)  # until git-worker, holding stderr, has ended
    assert review.returncode in (130, -signal.SIGINT)  # git itself dies of the SIGINT
    assert b"interrupted" in err
    wait_for(lambda: all(not alive(int(pid)) for pid in pids.read_text().split()))  # SIGKILLed


def test_configured_gate_with_arguments_no_shell(repo: GitRepo, sandbox: Sandbox) -> None:
    sandbox.script("my-check", 'printf "%s|" "$@"; echo')
    repo.git("config", "worker.reviewGate", "my-check 'two words' $HOME;")
    repo.work("w1", "work.txt")
    r = repo.ok("review", "w1")
    assert "two words|$HOME;|" in r.out


def test_relative_gate_path_comes_from_the_main_worktree(repo: GitRepo) -> None:
    gate = repo.path / "tools" / "gate"
    gate.parent.mkdir()
    gate.write_text('#!/bin/sh\necho "the real gate in $(basename "$PWD")"\nexit 1\n')
    gate.chmod(0o755)
    repo.git("config", "worker.reviewGate", "tools/gate")
    repo.work("w1", "work.txt")
    forged = repo.workers_dir / "w1" / "tools" / "gate"  # the branch's own "gate"
    forged.parent.mkdir()
    forged.write_text("#!/bin/sh\nexit 0\n")
    forged.chmod(0o755)
    r = repo.worker("review", "w1")
    assert r.code == 1 and "the real gate in w1" in r.out


def test_configured_gate_missing_names_the_setting(repo: GitRepo) -> None:
    repo.git("config", "worker.reviewGate", "no-such-gate --strict")
    repo.work("w1", "work.txt")
    r = repo.worker("review", "w1")
    assert r.code == 1
    assert "review gate 'no-such-gate' not found (from git config worker.reviewGate)" in r.err


def test_gate_runs_by_itself_when_agent_exits_0(repo: GitRepo, sandbox: Sandbox, agent) -> None:
    sandbox.script("review-gate", 'echo "auto review of $GIT_WORKER_ID"; test -f work.txt')
    repo.git("config", "worker.review", "true")
    repo.ok("spawn", "w1")
    repo.wait("w1", "reviewed")
    record = repo.record("w1")
    assert record["review"]["status"] == "passed"
    assert record["review"]["commit"] == repo.git("rev-parse", "worker/w1")
    assert "auto review of w1" in (repo.path / ".git/workers/w1/review.log").read_text()


def test_automatic_review_that_cannot_run_says_why_in_runner_log(repo: GitRepo,
                                                                agent) -> None:
    repo.git("config", "worker.review", "true")
    repo.git("config", "worker.reviewGate", "no-such-gate")
    repo.ok("spawn", "w1")
    repo.wait("w1", "exited")
    wait_for_runner(repo, "w1")
    assert repo.record("w1")["review"]["status"] == "error"
    log = (repo.path / ".git/workers/w1/runner.log").read_text()
    assert "git-worker: review of w1: review gate 'no-such-gate' not found" in log


def test_no_automatic_review_when_agent_fails_or_review_off(repo: GitRepo, sandbox: Sandbox,
                                                           agent) -> None:
    marker = sandbox.home / "gate-ran"
    sandbox.script("review-gate", f'touch "{marker}"')
    repo.git("config", "worker.review", "true")
    repo.ok("spawn", "w1", env={"AGENT_EXIT": "1"})
    repo.wait("w1", "failed")
    repo.git("config", "worker.review", "false")
    repo.ok("spawn", "w2")
    repo.wait("w2", "exited")
    for wid in ("w1", "w2"):
        wait_for_runner(repo, wid)
    assert repo.record("w2")["state"] == "exited"
    assert not marker.exists()
    assert repo.record("w1")["review"]["status"] is None


def test_spawn_review_flags_override_the_setting(repo: GitRepo, sandbox: Sandbox,
                                                  agent) -> None:
    marker = sandbox.home / "gate-ran"
    sandbox.script("review-gate", f'echo "$GIT_WORKER_ID" >> "{marker}"')
    repo.ok("spawn", "on", "--review")  # worker.review is off
    repo.wait("on", "reviewed")
    assert repo.record("on")["review"] == {**repo.record("on")["review"], "auto": True,
                                           "status": "passed"}
    repo.git("config", "worker.review", "true")
    repo.ok("spawn", "off", "--no-review")
    repo.wait("off", "exited")
    wait_for_runner(repo, "off")
    assert marker.read_text() == "on\n"
    assert repo.record("off")["review"]["auto"] is False
    repo.ok("merge", "off")  # never reviewed, and review is off for this worker: it merges
    r = repo.worker("spawn", "both", "--review", "--no-review", "--no-launch")
    assert r.code == 2 and "not allowed with argument" in r.err


def wait_for_runner(repo: GitRepo, wid: str, timeout: float = 60) -> None:
    """Until the process that babysat the agent (and would run the gate) has ended."""
    pid = repo.record(wid)["launcher"]["pid"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"runner {pid} of {wid} still alive")


def test_review_of_an_unknown_worker_fails_before_printing_anything(repo: GitRepo,
                                                                      sandbox: Sandbox) -> None:
    ran = sandbox.root / "gate-ran"
    sandbox.script("review-gate", f"touch {ran}")
    r = repo.worker("review", "nosuch")
    assert (r.code, r.out) == (1, "")
    assert r.err == "error: no worker 'nosuch'\nhint: git worker list shows the workers\n"
    assert not ran.exists()


def test_review_repeated_interrupts_still_stop_the_gate(repo: GitRepo, sandbox: Sandbox) -> None:
    """git passes a ^C on to git-worker a second time (run-command's clean_on_exit), and an
    impatient user presses it again: a second SIGINT while the first is being handled must
    not cut short ending the gate."""
    pids = sandbox.root / "pids"
    sandbox.script("review-gate", f"""
        sleep 300 &
        echo "$$ $!" > "{pids}.tmp" && mv "{pids}.tmp" "{pids}"
        sleep 300
    """)
    repo.work("w1", "work.txt")
    review = subprocess.Popen(["git-worker", "review", "w1"], cwd=repo.path, env=sandbox.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(pids.exists)
    for _ in range(50):
        with contextlib.suppress(ProcessLookupError):
            review.send_signal(signal.SIGINT)
        time.sleep(0.0005)
    _, err = review.communicate(timeout=30)
    assert review.returncode in (130, -signal.SIGINT)
    wait_for(lambda: all(not alive(int(pid)) for pid in pids.read_text().split()))
