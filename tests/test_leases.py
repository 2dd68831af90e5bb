"""Leased ports and slots: unique among the live workers of every repository of the user,
free when leased, handed to setup, agent, gate and teardown, and given back."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from conftest import GitRepo, Sandbox
from git_worker import leases
from git_worker.config import Config
from git_worker.errors import WorkerError
from git_worker.registry.record import Record

# Setup commands that prove a leased port free: each is bound (and let go) at spawn time.
BIND_ALL = (f"{sys.executable} -c \"import os, socket; "
            "[socket.socket().bind(('127.0.0.1', int(p))) "
            "for p in os.environ['GIT_WORKER_PORTS'].split()]\"")


def store(sandbox: Sandbox) -> list[dict[str, Any]]:
    path = sandbox.home / ".local" / "state" / "git-worker" / "leases.json"
    if not path.exists():
        return []
    leases: list[dict[str, Any]] = json.loads(path.read_text())["leases"]
    return leases


def held_by(sandbox: Sandbox, worker_id: str) -> list[dict[str, Any]]:
    return [h for h in store(sandbox) if h["worker"] == worker_id]


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A port this test holds (listening), as any other program on the machine might."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    try:
        yield s
    finally:
        s.close()


@pytest.mark.race
def test_twenty_parallel_spawns_get_forty_distinct_free_ports(sandbox: Sandbox,
                                                              repo: GitRepo) -> None:
    repo.git("config", "worker.ports", "2")
    repo.git("config", "worker.portRange", "21000-21999")
    repo.git("config", "--add", "worker.setup", BIND_ALL)  # fails the spawn if one is taken
    ids = [f"w{n:02}" for n in range(20)]
    spawns = [subprocess.Popen(["git", "worker", "spawn", worker_id, "--no-launch"],
                               cwd=repo.path, env=sandbox.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for worker_id in ids]
    for p in spawns:
        out, err = p.communicate(timeout=110)
        assert p.returncode == 0, out + err

    records = {i: repo.record(i)["leases"] for i in ids}
    ports = [p for leased in records.values() for p in leased["ports"]]
    assert len(ports) == 40 and len(set(ports)) == 40
    assert all(21000 <= p <= 21999 for p in ports)
    assert sorted(leased["slot"] for leased in records.values()) == list(range(1, 21))
    # The store and the records agree.
    assert {h["worker"]: {"ports": h["ports"], "slot": h["slot"]}
            for h in store(sandbox)} == records
    assert {h["repository"] for h in store(sandbox)} == {str(repo.path / ".git")}
    shown = repo.show("w07")
    assert shown["leases"] == records["w07"]


def test_a_port_another_process_holds_is_never_leased(sandbox: Sandbox, repo: GitRepo,
                                                      listener: socket.socket) -> None:
    taken = listener.getsockname()[1]
    repo.git("config", "worker.ports", "2")
    repo.git("config", "worker.portRange", f"{taken}-{taken + 30}")
    repo.ok("spawn", "w1", "--no-launch")
    leased = repo.record("w1")["leases"]["ports"]
    assert taken not in leased and len(leased) == 2
    assert all(taken < p <= taken + 30 for p in leased)

    # A range holding only that port: a clear failure, and nothing left behind.
    repo.git("config", "worker.portRange", f"{taken}-{taken}")
    repo.git("config", "worker.ports", "1")
    before, leases_before = repo.snapshot(), store(sandbox)
    r = repo.worker("spawn", "w2", "--no-launch")
    assert r.code == 1
    assert f"no 1 free port(s) in worker.portRange {taken}-{taken}" in r.err
    assert "1 in use by other processes" in r.err
    assert "widen the range: git config worker.portRange LOW-HIGH" in r.err
    assert repo.snapshot() == before and store(sandbox) == leases_before


def test_two_repositories_of_one_user_never_share_a_port_or_slot(sandbox: Sandbox,
                                                                 repo: GitRepo) -> None:
    other = GitRepo(sandbox, sandbox.root / "other")
    for r in (repo, other):
        r.git("config", "worker.ports", "3")
        r.git("config", "worker.portRange", "22000-22099")
    repo.ok("spawn", "a", "--no-launch")
    other.ok("spawn", "a", "--no-launch")  # the same id, in another repository
    repo.ok("spawn", "b", "--no-launch")
    mine = repo.record("a")["leases"], repo.record("b")["leases"]
    theirs = other.record("a")["leases"]
    assert set(theirs["ports"]).isdisjoint(mine[0]["ports"] + mine[1]["ports"])
    assert len({theirs["slot"], mine[0]["slot"], mine[1]["slot"]}) == 3
    # rm in one repository gives back only that repository's lease of the id.
    repo.ok("rm", "a")
    assert [h["repository"] for h in held_by(sandbox, "a")] == [str(other.path / ".git")]


def test_the_store_is_private(sandbox: Sandbox, repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    directory = sandbox.home / ".local" / "state" / "git-worker"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "leases.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "leases.lock").stat().st_mode) == 0o600
    # A directory opened up by someone is closed again at the next lease.
    directory.chmod(0o755)
    repo.ok("spawn", "w2", "--no-launch")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to become another user (setpriv)")
def test_another_user_can_read_no_lease(sandbox: Sandbox, repo: GitRepo, tmp_path: Path) -> None:
    # A state home every user may pass through, as ~/.local/state is under a 0755 home.
    state = tmp_path / "open"
    state.mkdir()
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in (state, *state.parents)}
    try:
        for p, mode in modes.items():
            p.chmod(mode | 0o011)  # traversable by anyone, not listable
        repo.ok("spawn", "w1", "--no-launch", env={"XDG_STATE_HOME": str(state)})
        store_dir = state / "git-worker"
        as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        for argv in (["ls", store_dir], ["cat", store_dir / "leases.json"]):
            r = sandbox.run(*as_nobody, *argv)
            assert r.code != 0 and "Permission denied" in r.err, (argv, r)
        # The control: as its owner, the same reads work.
        assert sandbox.run("cat", store_dir / "leases.json").code == 0
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_every_worker_gets_a_slot_even_without_ports(sandbox: Sandbox, repo: GitRepo) -> None:
    repo.git("config", "--add", "worker.setup", "sh -c 'env > ../env-$GIT_WORKER_ID'")
    repo.ok("spawn", "a", "b", "--no-launch")
    # Spawned at once: which of the two leases first is not fixed; each its own slot is.
    slots = {w: repo.record(w)["leases"]["slot"] for w in ("a", "b")}
    assert sorted(slots.values()) == [1, 2]
    assert repo.record("b")["leases"] == {"ports": [], "slot": slots["b"]}
    env = (repo.workers_dir / "env-b").read_text().splitlines()
    assert f"GIT_WORKER_SLOT={slots['b']}" in env
    assert not any(line.startswith("GIT_WORKER_PORT") for line in env)
    assert f"slot {slots['b']}" in repo.ok("show", "b").out


def test_leases_come_back_after_rm(sandbox: Sandbox, repo: GitRepo) -> None:
    repo.git("config", "worker.ports", "1")
    repo.git("config", "worker.portRange", "23000-23099")
    repo.ok("spawn", "a", "b", "--no-launch")
    first = repo.record("a")["leases"]
    repo.ok("rm", "a")
    assert held_by(sandbox, "a") == []
    repo.ok("spawn", "c", "--no-launch")  # the lowest free slot and port: a's
    assert repo.record("c")["leases"] == first


def test_leases_come_back_when_a_spawn_rolls_back(sandbox: Sandbox, repo: GitRepo) -> None:
    repo.git("config", "worker.ports", "2")
    repo.git("config", "worker.portRange", "23100-23199")
    seen = sandbox.root / "seen"
    repo.git("config", "--add", "worker.setup", f"sh -c 'echo $GIT_WORKER_PORT > {seen}; exit 4'")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch")
    assert r.code == 1 and "failed (exit 4)" in r.err
    assert seen.read_text() == "23100\n"  # it had them
    assert repo.snapshot() == before
    assert store(sandbox) == []


def test_leases_of_a_killed_spawn_come_back_with_fsck_repair(sandbox: Sandbox,
                                                             repo: GitRepo) -> None:
    repo.git("config", "worker.ports", "2")
    repo.git("config", "worker.portRange", "23200-23299")
    repo.git("config", "--add", "worker.setup", "true")
    repo.ok("spawn", "keep", "--no-launch")
    r = repo.worker("spawn", "w1", "--no-launch",
                    env={"GIT_WORKER_FAILPOINTS": "spawn.setup:kill"})
    assert r.code == 137
    lost = held_by(sandbox, "w1")
    assert [h["ports"] for h in lost] == [[23202, 23203]]
    # Its record is still there (spawning, its spawner dead): the lease is not stale yet.
    r = repo.worker("fsck")
    assert r.code == 1 and "spawn was interrupted" in r.out and "leased" not in r.out
    assert held_by(sandbox, "w1") == lost

    r = repo.worker("fsck", "--repair")
    assert r.code == 0, r.out + r.err
    assert "repaired: w1: slot 2, ports 23202 23203 are leased to a worker that is gone " \
           "(gave back slot 2, ports 23202 23203)" in r.out
    assert held_by(sandbox, "w1") == [] and len(held_by(sandbox, "keep")) == 1
    repo.ok("spawn", "w2", "--no-launch")
    assert repo.record("w2")["leases"]["ports"] == [23202, 23203]


def test_a_lease_proven_stale_is_reclaimed_by_the_next_lease(sandbox: Sandbox,
                                                             repo: GitRepo) -> None:
    """Stale: the repository is deleted, or its record is dropped behind git-worker's back,
    or a namesake was spawned since (another created_at). Each is read from the registry;
    a record that cannot be read proves nothing, and its lease is kept."""
    repo.git("config", "worker.ports", "1")
    repo.git("config", "worker.portRange", "23300-23399")
    gone = GitRepo(sandbox, sandbox.root / "gone")
    gone.git("config", "worker.portRange", "23300-23399")
    gone.git("config", "worker.ports", "1")
    gone.ok("spawn", "x", "--no-launch")
    for worker_id in ("dropped", "namesake", "unreadable"):
        repo.ok("spawn", worker_id, "--no-launch")
    assert len(store(sandbox)) == 4
    shutil.rmtree(gone.path)
    repo.git("update-ref", "-d", "refs/workers/dropped")
    rewrite(repo, "namesake", created_at="2001-01-01T00:00:00Z")
    repo.git("update-ref", "refs/workers/unreadable",
             repo.git("rev-parse", "refs/workers/unreadable^{tree}"))
    repo.ok("spawn", "new", "--no-launch")
    assert [h["worker"] for h in store(sandbox)] == ["unreadable", "new"]
    assert repo.record("new")["leases"] == {"ports": [23300], "slot": 1}


def test_a_lease_reads_only_the_records_that_moved_since_the_last(
        sandbox: Sandbox, repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each lease proves the other workers present by their records, exactly; a record
    read once is not read again while its worker's ref stays at that commit (a commit
    never changes). With a thousand workers on the machine, every spawn read them all."""
    from git_worker.repo import Repo

    for worker_id in ("a", "b", "c"):
        repo.ok("spawn", worker_id, "--no-launch")
    oids = {w: repo.git("rev-parse", f"refs/workers/{w}") for w in ("a", "b", "c")}
    assert {h["worker"]: h["record"] for h in store(sandbox)} == \
        {"a": oids["a"], "b": oids["b"], "c": None}  # c's: no lease has read it yet
    rewrite(repo, "b")  # b's record moves on (a new commit, the same worker)
    b_now = repo.git("rev-parse", "refs/workers/b")
    asked: list[str] = []
    read_objects = Repo.read_objects

    def spy(self: Repo, specs: list[str], **kwargs: Any) -> Any:
        asked.extend(specs)
        return read_objects(self, specs, **kwargs)

    monkeypatch.setattr(Repo, "read_objects", spy)
    monkeypatch.setenv("XDG_STATE_HOME", sandbox.env["XDG_STATE_HOME"])
    with leases._Store() as held:  # what the next lease does first
        leases._drop_gone(held)
    assert sorted(asked) == sorted([f"{b_now}:worker.json", f"{oids['c']}:worker.json"])
    assert {h["worker"]: h["record"] for h in store(sandbox)} == \
        {"a": oids["a"], "b": b_now, "c": oids["c"]}
    # A record that moved to a namesake's still proves its lease stale, at the next lease.
    rewrite(repo, "a", created_at="2001-01-01T00:00:00Z")
    repo.ok("spawn", "d", "--no-launch")
    assert [h["worker"] for h in store(sandbox)] == ["b", "c", "d"]


def test_an_unreadable_store_fails_the_spawn_clearly(sandbox: Sandbox, repo: GitRepo) -> None:
    path = sandbox.home / ".local" / "state" / "git-worker" / "leases.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch")
    assert r.code == 1
    assert f"error: w1: the lease store {path} is unreadable" in r.err
    assert "hint: look at it; deleting it forgets every lease" in r.err
    assert repo.snapshot() == before and path.read_text() == "{not json"


def rewrite(repo: GitRepo, worker_id: str, **fields: Any) -> None:
    """Replace a worker's record, behind git-worker's back, with ``fields`` changed."""
    data = repo.record(worker_id) | fields
    blob = repo.sandbox.run("git", "hash-object", "-w", "--stdin", cwd=repo.path,
                            input=json.dumps(data)).out.strip()
    tree = repo.sandbox.run("git", "mktree", cwd=repo.path,
                            input=f"100644 blob {blob}\tworker.json\n").out.strip()
    commit = repo.git("commit-tree", tree, "-m", "edited")
    repo.git("update-ref", f"refs/workers/{worker_id}", commit)


def test_setup_writes_env_from_the_variables_and_the_agent_sees_the_same(
        sandbox: Sandbox, repo: GitRepo) -> None:
    repo.git("config", "worker.ports", "2")
    repo.git("config", "worker.portRange", "23400-23499")
    repo.git("config", "worker.env.port", "{port}")
    repo.git("config", "worker.env.database-url", "postgres:///app_{slot}")
    repo.git("config", "worker.env.api-origin", "http://127.0.0.1:{port2}/{id}/{{x}}")
    names = "GIT_WORKER_PORT GIT_WORKER_PORTS GIT_WORKER_SLOT PORT DATABASE_URL API_ORIGIN"
    dump = ("for v in " + names + "; do eval \"echo $v=\\$$v\"; done")
    repo.git("config", "--add", "worker.setup", f"sh -c '{dump} > .env'")
    agent = sandbox.script("env-agent", f"""
        {dump} > "$GIT_WORKER_RUNTIME_DIR/agent.env"
    """)
    repo.git("config", "worker.agent", "env-agent")
    repo.git("config", "worker.agent.env-agent.command", str(agent))
    repo.git("config", "worker.launcher", "detached")
    repo.ok("spawn", "w1")
    repo.wait("w1", "exited")

    setup_env = (repo.workers_dir / "w1" / ".env").read_text()
    assert setup_env == ("GIT_WORKER_PORT=23400\nGIT_WORKER_PORTS=23400 23401\n"
                         "GIT_WORKER_SLOT=1\nPORT=23400\nDATABASE_URL=postgres:///app_1\n"
                         "API_ORIGIN=http://127.0.0.1:23401/w1/{x}\n")
    assert (repo.path / ".git" / "workers" / "w1" / "agent.env").read_text() == setup_env

    # The review gate sees them too.
    gate = sandbox.script("env-gate", f"""
        {dump} > "$GIT_WORKER_WORKTREE/../gate.env"
    """)
    repo.git("config", "worker.reviewGate", str(gate))
    repo.ok("review", "w1")
    assert (repo.workers_dir / "gate.env").read_text() == setup_env


@pytest.mark.parametrize(("key", "value", "wanted"), [
    ("worker.ports", "-1", "a whole number of at least 0"),
    ("worker.ports", "3", "at most the 2 port(s) of worker.portRange 24000-24001"),
    ("worker.portRange", "24000", "a range of TCP ports LOW-HIGH"),
    ("worker.portRange", "24001-24000", "a range of TCP ports LOW-HIGH"),
    ("worker.portRange", "0-70000", "a range of TCP ports LOW-HIGH"),
    ("worker.env.db", "app_{slto}", "{slto} is none (known: {id} {slot} {port} {ports} "
                                    "{port1})"),
    ("worker.env.db", "app_{port2}", "{port2} needs more ports than worker.ports gives"),
    ("worker.env.db", "app_{slot", "a template whose braces pair up"),
    ("worker.env.git-worker-slot", "1", "GIT_WORKER_* are set by git-worker"),
])
def test_a_bad_setting_fails_the_spawn_naming_it(sandbox: Sandbox, repo: GitRepo, key: str,
                                                 value: str, wanted: str) -> None:
    repo.git("config", "worker.ports", "1")
    repo.git("config", "worker.portRange", "24000-24001")
    repo.git("config", key, value)
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch")
    assert r.code == 1, r.err
    assert f"bad value '{value}' for {key.lower()}" in r.err and wanted in r.err
    assert "hint: fix it with: git config --local" in r.err
    assert repo.snapshot() == before and store(sandbox) == []


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["1", "0", "65535", "65536", "123456", "-", " ", "\t", "٣",
                                 "²", "x", "20000", "29999"]), max_size=6).map("".join))
def test_a_port_range_is_read_as_the_regular_expression_did(raw: str) -> None:
    """leases.port_range splits LOW-HIGH by hand (no `import re` on spawn's path): the
    ranges the expression it replaced accepted, and no others."""
    import re

    from git_worker.config import Entry

    assume(raw)  # empty: the default range, not this value
    found = re.fullmatch(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*", raw)
    low, high = (int(found[1]), int(found[2])) if found else (0, 0)
    config = Config([Entry("worker.portrange", raw, "local", "file:.git/config")])
    if 1 <= low <= high <= 65535:
        assert leases.port_range(config) == (low, high)
    else:
        with pytest.raises(WorkerError):
            leases.port_range(config)


def test_teardown_runs_before_rm_with_the_same_environment(sandbox: Sandbox,
                                                           repo: GitRepo) -> None:
    repo.git("config", "worker.ports", "1")
    repo.git("config", "worker.portRange", "24100-24199")
    repo.git("config", "worker.env.database-url", "postgres:///app_{slot}")
    report = sandbox.root / "torn-down"
    repo.git("config", "--add", "worker.teardown",
             f"sh -c '(echo $GIT_WORKER_ID $GIT_WORKER_PORT $DATABASE_URL $PWD; "
             f"test -e README && echo worktree-still-there) >> {report}'")
    repo.ok("spawn", "w1", "--no-launch")
    repo.ok("rm", "w1")
    wt = repo.workers_dir / "w1"
    assert report.read_text() == f"w1 24100 postgres:///app_1 {wt}\nworktree-still-there\n"
    assert not wt.exists() and held_by(sandbox, "w1") == []


def test_a_failing_teardown_refuses_rm_and_removes_nothing(sandbox: Sandbox,
                                                           repo: GitRepo) -> None:
    repo.git("config", "--add", "worker.teardown", "true")
    repo.git("config", "--add", "worker.teardown",
             "sh -c 'echo dropdb: database app_1 is in use; exit 3'")
    repo.ok("spawn", "w1", "--no-launch")
    before, leases_before = repo.snapshot(), store(sandbox)
    r = repo.worker("rm", "w1")
    assert r.code == 1
    assert "refusing to remove 'w1': teardown command 'sh -c 'echo dropdb: database app_1 " \
           "is in use; exit 3'' failed (exit 3):\ndropdb: database app_1 is in use" in r.err
    assert "pass --force to remove the worker all the same" in r.err
    after = repo.snapshot()
    assert after.pop("runtime") == [*before.pop("runtime"), "w1/teardown.log"]  # type: ignore[misc]
    assert after == before and store(sandbox) == leases_before

    r = repo.worker("rm", "--force", "w1")
    assert r.code == 0, r.err
    assert "warning: w1: teardown command" in r.err and "removing it anyway (--force)" in r.err
    assert "removed w1" in r.out
    assert "refs/workers/w1" not in repo.refs() and store(sandbox) == []


def test_list_flags_a_leased_port_taken_by_a_process_not_the_workers(
        sandbox: Sandbox, repo: GitRepo, listener: socket.socket) -> None:
    taken = listener.getsockname()[1]
    listener.close()  # free for the lease, then taken again below by "another program"
    repo.git("config", "worker.ports", "1")
    repo.git("config", "worker.portRange", f"{taken}-{taken + 30}")
    repo.ok("spawn", "theirs", "mine", "daemon", "--no-launch")
    theirs = repo.record("theirs")["leases"]["ports"][0]
    mine = repo.record("mine")["leases"]["ports"][0]
    daemon = repo.record("daemon")["leases"]["ports"][0]
    assert repo.ok("list").out.count("!") == 0

    foreign = socket.socket()  # this test process: not the worker's
    foreign.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    foreign.bind(("127.0.0.1", theirs))
    foreign.listen()
    # The workers' own dev servers: one in its worktree, one started elsewhere (by a
    # setup command, say) with the worker's environment.
    def serve(port: int, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", "import socket, sys, time; s = socket.socket(); "
             f"s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
             f"s.bind(('127.0.0.1', {port})); s.listen(); print('up', flush=True); "
             "time.sleep(60)"],
            cwd=cwd, env={**sandbox.env, **env}, stdout=subprocess.PIPE, text=True)

    servers = [serve(mine, repo.workers_dir / "mine", {}),
               serve(daemon, Path("/"), {"GIT_WORKER_ID": "daemon", "GIT_WORKER_WORKTREE":
                                         str(repo.workers_dir / "daemon")})]
    try:
        for server in servers:
            assert server.stdout is not None and server.stdout.readline() == "up\n"
        rows = {r["id"]: r for r in json.loads(repo.ok("list", "--json").out)}
        assert rows["theirs"]["problems"] == [
            f"port {theirs}, leased to this worker, is taken by pid {os.getpid()} "
            f"({Path(f'/proc/{os.getpid()}/comm').read_text().strip()}), which is not the "
            "worker's"]
        assert rows["mine"]["problems"] == [] and rows["daemon"]["problems"] == []
        out = repo.ok("list").out
        assert f"  ! port {theirs}, leased to this worker, is taken by pid {os.getpid()}" in out
        assert out.count("  ! ") == 1
    finally:
        for server in servers:
            server.kill()
            server.wait()
        foreign.close()


def test_config_lists_the_env_templates(repo: GitRepo) -> None:
    repo.git("config", "worker.env.database-url", "postgres:///app_{slot}")
    rows = {r["key"]: r for r in json.loads(repo.ok("config", "--json").out)}
    assert rows["worker.env.database-url"]["doc"] == \
        "environment variable DATABASE_URL for each worker"
    assert rows["worker.ports"]["value"] == "0"
    assert rows["worker.portRange"]["value"] == "20000-29999"



@pytest.mark.parametrize("forged", [
    {"ports": "20000", "slot": "1; rm -rf ~"}, {"ports": [True, "1", 2.5], "slot": True},
    {"ports": {"20000": 1}, "slot": None}, {"ports": 20000}, {},
])
def test_a_forged_leases_field_gives_no_values(sandbox: Sandbox, repo: GitRepo,
                                               forged: dict[str, Any]) -> None:
    """A record is untrusted: only integers it holds become variables, and list and show
    read any other value without failing."""
    record = Record("w1", "ready", "refs/heads/worker/w1", {"name": "main", "oid": "0" * 40},
                    "/nonexistent", leases=forged)
    assert leases.environment(Config([]), record) == {}
    repo.ok("spawn", "w1", "--no-launch")
    rewrite(repo, "w1", leases=forged)
    assert repo.show("w1")["leases"] == forged
    assert json.loads(repo.ok("list", "--json").out)[0]["problems"] == []


def test_rm_force_goes_on_when_the_teardown_cannot_even_start(sandbox: Sandbox,
                                                             repo: GitRepo) -> None:
    repo.git("config", "--add", "worker.teardown", "sh -c 'echo ran > ../torn'")
    repo.ok("spawn", "w1", "--no-launch")
    repo.git("config", "worker.env.db", "app_{slto}")  # broken after the spawn
    r = repo.worker("rm", "w1")
    assert r.code == 1 and "bad value 'app_{slto}' for worker.env.db" in r.err
    assert "refs/workers/w1" in repo.refs()
    r = repo.worker("rm", "--force", "w1")
    assert r.code == 0, r.err
    assert "warning: w1: worker.teardown did not run (bad value 'app_{slto}' for " \
           "worker.env.db" in r.err and "removing it anyway (--force)" in r.err
    assert "refs/workers/w1" not in repo.refs() and store(sandbox) == []
    assert not (repo.workers_dir / "torn").exists()


def test_a_store_that_cannot_be_made_fails_the_spawn_clearly(sandbox: Sandbox,
                                                             repo: GitRepo) -> None:
    blocker = sandbox.root / "state-is-a-file"
    blocker.write_text("")
    before = repo.snapshot()
    r = repo.worker("spawn", "w1", "--no-launch", env={"XDG_STATE_HOME": str(blocker)})
    assert r.code == 1, r.err
    assert f"error: w1: cannot use the lease store {blocker}/git-worker: Not a directory" in r.err
    assert "point XDG_STATE_HOME elsewhere" in r.err
    assert repo.snapshot() == before


def test_doctor_checks_the_lease_settings_and_knows_env_templates(repo: GitRepo) -> None:
    repo.git("config", "worker.env.database-url", "postgres:///app_{slot}")
    found = {c["check"]: c for c in json.loads(repo.worker("doctor", "--json").out)}
    assert not any("worker.env" in name for name in found)  # known, and it parses
    repo.git("config", "worker.env.port", "{port}")  # but worker.ports is 0
    found = {c["check"]: c for c in json.loads(repo.worker("doctor", "--json").out)}
    check = found["setting worker.ports, worker.portRange, worker.env.*"]
    assert check["status"] == "fail"
    assert "bad value '{port}' for worker.env.port" in check["detail"]
