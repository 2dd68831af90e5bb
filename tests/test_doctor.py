"""git worker doctor: each check's verdict and fix, and the exit code."""

from __future__ import annotations

import json
import re
from typing import Any

from conftest import GitRepo, Sandbox


def checks(repo: GitRepo, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    r = repo.worker("doctor", "--json", env=env)
    assert r.code in (0, 1), r.err
    return r.code, {c["check"]: c for c in json.loads(r.out)}


def test_healthy_setup_exits_0(repo: GitRepo, sandbox: Sandbox, agent) -> None:
    sandbox.script("review-gate", "exit 0")
    repo.ok("hooks", "install")
    code, found = checks(repo)
    assert code == 0, found
    assert found["git"]["status"] == "ok"
    assert found["dulwich"]["detail"].startswith("1.2.21")
    assert found["agent stand-in (worker.agent)"]["status"] == "ok"
    assert found["review gate"]["status"] == "ok"
    assert found["remote"]["detail"] == "base main is local: nothing to fetch"
    assert found["worktree dir"]["status"] == "ok"
    assert found["git hooks"]["status"] == "ok"
    assert found["identity"]["detail"] == "Test Author <author@example.com>"
    assert all(c["status"] != "fail" for c in found.values())


def test_missing_agent_fails_with_the_fix(repo: GitRepo, sandbox: Sandbox) -> None:
    env = {"PATH": f"{sandbox.bin}:/usr/bin:/bin"}
    repo.git("config", "worker.agent", "codex")
    code, found = checks(repo, env)
    assert code == 1
    check = found["agent codex (worker.agent)"]
    assert check["status"] == "fail" and "codex is not on PATH" in check["detail"]
    assert "npm install -g @openai/codex" in check["fix"]


def test_known_agent_version_and_login(repo: GitRepo, sandbox: Sandbox) -> None:
    sandbox.script("claude", 'echo "2.1.9 (Claude Code)"')
    _, found = checks(repo)
    check = found["agent claude (worker.agent)"]
    assert check["status"] == "warn"
    assert check["detail"].startswith("2.1.9 (Claude Code); allows: edits files (and file "
                                      "commands); runs only git add/commit/status "
                                      "(acceptEdits); "
                                      "cannot see a login")
    creds = sandbox.home / ".claude" / ".credentials.json"
    creds.parent.mkdir()
    creds.write_text("{}")
    _, found = checks(repo)
    check = found["agent claude (worker.agent)"]
    assert check["status"] == "ok" and "logged in (~/.claude/.credentials.json)" in check["detail"]


def test_bad_settings_fail_and_unknown_ones_warn(repo: GitRepo, agent) -> None:
    repo.git("config", "worker.noFetch", "maybe")
    repo.git("config", "worker.fetchTimeout", "-3")
    repo.git("config", "worker.launcher", "screen")
    repo.git("config", "worker.reviewGate", "check 'unbalanced")
    repo.git("config", "worker.colour", "blue")
    code, found = checks(repo)
    assert code == 1
    assert "bad value 'maybe' for worker.nofetch" in found["setting worker.noFetch"]["detail"]
    assert found["setting worker.fetchTimeout"]["status"] == "fail"
    assert found["setting worker.launcher"]["detail"] == "'screen' is not one of tmux, detached"
    assert found["setting worker.reviewGate"]["status"] == "fail"
    assert found["setting worker.colour"]["status"] == "warn"


def test_review_on_without_gate_fails(repo: GitRepo, agent) -> None:
    repo.git("config", "worker.review", "true")
    code, found = checks(repo)
    assert code == 1
    gate = found["review gate"]
    assert gate["status"] == "fail" and "worker.review is true" in gate["detail"]
    assert "git config worker.review false" in gate["fix"]


def test_unreachable_remote_is_a_bounded_warning(repo: GitRepo, sandbox: Sandbox, agent) -> None:
    repo.git("remote", "add", "origin", str(sandbox.root / "gone.git"))
    repo.git("update-ref", "refs/remotes/origin/main", "main")
    repo.git("config", "worker.baseBranch", "origin/main")
    _, found = checks(repo)
    assert found["remote"]["status"] == "fail"  # not a network error: the repository is gone
    assert "remote not found" in found["remote"]["detail"]
    remote = sandbox.root / "remote.git"
    sandbox.run("git", "clone", "-q", "--bare", str(repo.path), str(remote))
    repo.git("remote", "set-url", "origin", str(remote))
    _, found = checks(repo)
    assert found["remote"] == {"check": "remote", "status": "ok", "fix": None,
                               "detail": "origin reachable; origin/main exists there"}


def test_tracker(repo: GitRepo, sandbox: Sandbox, agent) -> None:
    sandbox.script("bd", 'echo "bd version 0.9.0"')
    _, found = checks(repo)
    assert found["tracker"]["status"] == "warn"
    assert "no .beads database" in found["tracker"]["detail"]
    (repo.path / ".beads").mkdir()
    _, found = checks(repo)
    assert found["tracker"] == {"check": "tracker", "status": "ok", "fix": None,
                                "detail": "bd version 0.9.0; .beads found"}


def test_text_output(repo: GitRepo, agent) -> None:
    r = repo.worker("doctor")
    assert r.code == 0, r.out
    assert re.match(r"ok    git-worker +0\.1\.0 \(checkout: ", r.out)  # the installation first
    assert re.search(r"\nok    git +2\.", r.out)
    assert "warn  git hooks" in r.out and "fix: git worker hooks install" in r.out
    assert re.search(r"\n0 failed, \d+ warning\(s\)\n\Z", r.out)


def test_outside_a_repository(sandbox: Sandbox) -> None:
    r = sandbox.run("git", "worker", "doctor")
    assert r.code == 1
    assert "fail  repository  not a git repository" in r.out
