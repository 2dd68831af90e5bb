"""Base branch and fetching: a local base is never fetched; a remote-tracking one is, with
a timeout, without prompts, and a failure says which kind it is and the way out."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import GitRepo, Sandbox


@pytest.fixture
def origin(sandbox: Sandbox, repo: GitRepo) -> str:
    """A reachable remote `origin` (a bare repository on disk) with main fetched once."""
    url = str(sandbox.root / "origin.git")
    repo.git("clone", "-q", "--bare", str(repo.path), url)
    repo.git("remote", "add", "origin", url)
    repo.git("fetch", "-q", "origin")
    repo.git("remote", "set-head", "origin", "main")
    return url


def _push_to_origin(sandbox: Sandbox, origin: str, name: str) -> str:
    """A commit lands on origin's main from someone else's clone."""
    other = sandbox.root / f"clone-{name}"
    sandbox.run("git", "clone", "-q", origin, str(other))
    (other / name).write_text(name)
    sandbox.run("git", "add", name, cwd=other)
    sandbox.run("git", "commit", "-q", "-m", name, cwd=other)
    assert sandbox.run("git", "push", "-q", "origin", "main", cwd=other).code == 0
    return sandbox.run("git", "rev-parse", "HEAD", cwd=other).out.strip()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler(http.server.BaseHTTPRequestHandler):
    mode = "401"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.mode == "hang":
            time.sleep(30)
            return
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_remote() -> Iterator[callable]:
    servers = []

    def start(mode: str) -> str:
        handler = type("H", (_Handler,), {"mode": mode})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/repo.git"

    yield start
    for s in servers:
        s.shutdown()


def test_local_base_is_never_fetched(repo: GitRepo, origin: str) -> None:
    repo.git("remote", "set-url", "origin", f"http://127.0.0.1:{_closed_port()}/x.git")
    r = repo.ok("spawn", "w1", "-f", "main", "--no-launch")
    assert "warning" not in r.err
    assert repo.record("w1")["base"]["fetched"] is False


def test_remote_tracking_base_is_fetched_first(repo: GitRepo, sandbox: Sandbox,
                                               origin: str) -> None:
    newest = _push_to_origin(sandbox, origin, "upstream-change")
    repo.ok("spawn", "w1", "-f", "origin/main", "--no-launch")
    base = repo.record("w1")["base"]
    assert base == {"name": "origin/main", "ref": "refs/remotes/origin/main", "oid": newest,
                    "fetched": True, "fetch_error": None}
    assert repo.git("rev-parse", "worker/w1") == newest


def test_no_fetch_flag_and_setting_start_from_the_local_copy(repo: GitRepo, sandbox: Sandbox,
                                                             origin: str) -> None:
    stale = repo.git("rev-parse", "origin/main")
    _push_to_origin(sandbox, origin, "upstream-change")
    repo.ok("spawn", "w1", "-f", "origin/main", "--no-fetch", "--no-launch")
    repo.ok("spawn", "w2", "-f", "origin/main", "--noFetch", "--no-launch")  # the old spelling
    repo.git("config", "worker.noFetch", "yes")
    repo.ok("spawn", "w3", "-f", "origin/main", "--no-launch")
    for wid in ("w1", "w2", "w3"):
        assert repo.record(wid)["base"]["oid"] == stale
        assert repo.record(wid)["base"]["fetched"] is False


def test_network_failure_with_a_local_copy_warns_and_goes_on(repo: GitRepo, origin: str) -> None:
    repo.git("remote", "set-url", "origin", f"http://127.0.0.1:{_closed_port()}/x.git")
    r = repo.ok("spawn", "w1", "-f", "origin/main", "--no-launch")
    assert "warning: could not fetch origin/main (network:" in r.err
    assert "starting from the local copy" in r.err
    base = repo.record("w1")["base"]
    assert base["fetched"] is False and base["fetch_error"].startswith("network: ")


def test_network_failure_without_a_local_copy_fails_clearly(repo: GitRepo, origin: str) -> None:
    repo.git("remote", "set-url", "origin", f"ssh://127.0.0.1:{_closed_port()}/x.git")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "-f", "origin/feature", "--no-launch")
    assert r.code == 1
    assert "cannot fetch base 'origin/feature' from origin: network problem" in r.err
    assert "-f main" in r.err
    assert repo.snapshot() == before


def test_fetch_timeout_is_a_network_failure(repo: GitRepo, origin: str, http_remote) -> None:
    repo.git("remote", "set-url", "origin", http_remote("hang"))
    repo.git("config", "worker.fetchTimeout", "1")
    r = repo.ok("spawn", "w1", "-f", "origin/main", "--no-launch")
    assert "timed out after 1 s (worker.fetchTimeout)" in r.err
    assert repo.record("w1")["base"]["fetch_error"].startswith("network: ")


def test_auth_failure_names_credentials_and_no_fetch(repo: GitRepo, origin: str,
                                                     http_remote) -> None:
    repo.git("remote", "set-url", "origin", http_remote("401"))
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "-f", "origin/main", "--no-launch")
    assert r.code == 1
    assert "authentication failed" in r.err
    assert "--no-fetch" in r.err and "git config worker.noFetch true" in r.err
    assert repo.snapshot() == before


def test_missing_remote_repository(repo: GitRepo, sandbox: Sandbox, origin: str) -> None:
    repo.git("remote", "set-url", "origin", str(sandbox.root / "gone.git"))
    r = repo.worker("spawn", "w1", "-f", "origin/main", "--no-launch")
    assert r.code == 1
    assert "remote repository not found" in r.err


def test_branch_missing_on_a_reachable_remote(repo: GitRepo, origin: str) -> None:
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "-f", "origin/mian", "--no-launch")
    assert r.code == 1
    assert "base branch 'origin/mian' not found on origin" in r.err
    assert "did you mean: origin/main" in r.err
    assert repo.snapshot() == before


def test_branch_that_exists_nowhere(repo: GitRepo) -> None:
    r = repo.worker("spawn", "w1", "-f", "integration", "--no-launch")
    assert r.code == 1
    assert r.err.startswith("error: base branch 'integration' not found")


def test_setting_chooses_the_base(repo: GitRepo) -> None:
    release = repo.commit("r.txt", "r")
    repo.git("branch", "release")
    repo.commit("later.txt", "later")
    repo.git("config", "worker.baseBranch", "release")
    repo.ok("spawn", "w1", "--no-launch")
    assert repo.record("w1")["base"]["oid"] == release


@pytest.mark.parametrize("branch", ["main", "master", "trunk"])
def test_auto_detects_a_local_main_branch(sandbox: Sandbox, branch: str) -> None:
    repo = GitRepo(sandbox, sandbox.root / f"r-{branch}")
    if branch != "main":
        repo.git("branch", "-m", "main", branch)
    repo.git("checkout", "-q", "-b", "topic")
    repo.commit("topic.txt", "t")
    repo.ok("spawn", "w1", "--no-launch")
    assert repo.record("w1")["base"]["name"] == branch


def test_auto_detect_starts_from_the_local_branch_that_lands_in_origin_head(
        repo: GitRepo, origin: str) -> None:
    # By design (issue 13): origin/HEAD names the main line, but work lands in local main.
    repo.ok("spawn", "w1", "--no-launch")
    assert repo.record("w1")["base"]["name"] == "main"


def test_auto_detect_follows_origin_head_when_no_local_branch_lands_there(
        repo: GitRepo, sandbox: Sandbox, origin: str) -> None:
    repo.git("branch", "develop")
    repo.git("push", "-q", "origin", "develop")
    repo.git("branch", "-D", "develop")
    repo.git("fetch", "-q", "origin")
    repo.git("remote", "set-head", "origin", "develop")
    repo.ok("spawn", "w1", "--no-launch")
    assert repo.record("w1")["base"]["name"] == "origin/develop"


def test_auto_detect_uses_the_branch_that_tracks_origin_head(repo: GitRepo, origin: str) -> None:
    repo.git("branch", "-m", "main", "mine")
    repo.git("branch", "-u", "origin/main", "mine")
    repo.ok("spawn", "w1", "--no-launch")
    assert repo.record("w1")["base"]["name"] == "mine"


def _clone(sandbox: Sandbox, origin: Path) -> GitRepo:
    """A `git clone` of ``origin`` (main tracking origin/main, origin/HEAD set), driven
    through GitRepo's helpers — GitRepo() itself would `git init` a new repository."""
    assert sandbox.run("git", "clone", "-q", str(origin), "clone").code == 0
    repo = GitRepo.__new__(GitRepo)
    repo.sandbox, repo.path = sandbox, sandbox.root / "clone"
    assert repo.git("rev-parse", "--abbrev-ref", "main@{upstream}") == "origin/main"
    assert repo.git("symbolic-ref", "refs/remotes/origin/HEAD") == "refs/remotes/origin/main"
    return repo


def _land_locally(repo: GitRepo, n: int) -> None:
    """n topic branches merged into local main with plain git (never pushed)."""
    for i in range(n):
        repo.git("checkout", "-q", "-b", f"topic{i}")
        repo.commit(f"topic{i}.txt", f"{i}\n")
        repo.git("checkout", "-q", "main")
        repo.git("merge", "-q", "--no-ff", "-m", f"merge topic{i}", f"topic{i}")


def test_stale_origin_does_not_become_the_base_and_behind_counts_the_landing_target(
        sandbox: Sandbox) -> None:
    # An ordinary clone: main tracks origin/main, origin/HEAD exists.
    seed = GitRepo(sandbox, sandbox.root / "seed")
    origin = sandbox.root / "origin.git"
    seed.git("clone", "-q", "--bare", str(seed.path), str(origin))
    repo = _clone(sandbox, origin)
    repo.ok("spawn", "early", "--no-launch")  # before the day's merges
    repo.ok("spawn", "remote", "-f", "origin/main", "--no-launch")  # asked for: kept
    _land_locally(repo, 14)
    assert repo.git("rev-list", "--count", "origin/main..main") == "28"
    assert repo.git("rev-list", "--count", "--merges", "origin/main..main") == "14"

    repo.ok("spawn", "late", "--no-launch")
    late = repo.record("late")
    assert late["base"]["name"] == "main"
    assert late["base"]["oid"] == repo.git("rev-parse", "main")
    assert (repo.workers_dir / "late" / "topic13.txt").exists()  # what landed is there
    assert repo.record("remote")["base"]["name"] == "origin/main"

    rows = {r["id"]: r for r in json.loads(repo.ok("list", "--json").out)}
    assert rows["late"]["behind"] == 0
    assert rows["early"]["behind"] == 28
    assert rows["remote"]["behind"] == 28  # behind main, where it lands — not origin/main
    assert repo.show("remote")["behind"] == 28
    listed = repo.ok("list").out
    assert "origin/main (+28)" in listed and "main (+28)" in listed
    assert "28 behind" in repo.ok("show", "early").out


def test_auto_detect_falls_back_to_the_current_branch(repo: GitRepo) -> None:
    repo.git("branch", "-m", "main", "develop")
    repo.ok("spawn", "w1", "--no-launch")
    assert repo.record("w1")["base"]["name"] == "develop"


def test_branch_deleted_on_the_remote_says_so_and_no_fetch_starts_from_the_copy(
        repo: GitRepo, sandbox: Sandbox, origin: str) -> None:
    repo.git("push", "-q", "origin", "main:feature")
    repo.git("fetch", "-q", "origin")
    copy = repo.git("rev-parse", "origin/feature")
    sandbox.run("git", "--git-dir", origin, "branch", "-q", "-D", "feature")  # ours stays
    assert repo.git("rev-parse", "origin/feature") == copy
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "-f", "origin/feature", "--no-launch")
    assert r.code == 1
    assert (f"error: branch feature no longer exists on origin (deleted there?); your copy "
            f"origin/feature at {copy[:12]} is what it was when last fetched") in r.err
    assert "hint: start from that copy with --no-fetch (-f origin/feature --no-fetch)" in r.err
    assert repo.snapshot() == before
    repo.ok("spawn", "w1", "-f", "origin/feature", "--no-fetch", "--no-launch")
    assert repo.git("rev-parse", "worker/w1") == copy


def test_a_commit_is_a_base_and_merge_then_asks_for_into(repo: GitRepo) -> None:
    first = repo.git("rev-parse", "HEAD")
    repo.commit("later.txt", "later\n")
    for given in (first, first[:10]):
        w = f"w{len(given)}"
        repo.ok("spawn", w, "-f", given, "--no-launch")
        assert repo.git("rev-parse", f"worker/{w}") == first
        assert repo.record(w)["base"] | {"fetched": None} == {
            "name": given, "ref": None, "oid": first, "fetched": None, "fetch_error": None}
    repo.work("w40", "f.txt")
    r = repo.worker("merge", "w40")
    assert r.code == 1
    assert f"the base {first} is a commit, not a branch: there is no branch to merge into" \
        in r.err
    assert "hint: name one with --into BRANCH" in r.err
    assert repo.record("w40")["state"] == "ready"
    repo.ok("merge", "w40", "--into", "main")
    assert (repo.path / "f.txt").exists()
    assert json.loads(repo.ok("list", "--json").out)[0]["ahead"] == 0  # w10: nothing yet


def test_a_tag_base_merge_says_why_it_needs_into(repo: GitRepo) -> None:
    repo.git("tag", "-a", "-m", "one", "v1")
    repo.ok("spawn", "w1", "-f", "v1", "--no-launch")
    repo.work("w1", "f.txt")
    r = repo.worker("merge", "w1")
    assert r.code == 1
    assert "the base v1 is not a branch (a tag?): there is no branch to merge into" in r.err
    assert "hint: name one with --into BRANCH" in r.err
