"""The team registry (worker.remote): one registry shared by several clones through a bare
remote — claims that exactly one host wins, changes published with leases, offline work
published later, conflicts reported with both sides kept, other hosts read-only."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import CHECKOUT, ClonedRepo, Sandbox, Team, wait_for


def ids_of(result_out: str) -> list[str]:
    return [row["id"] for row in json.loads(result_out)]


def test_a_worker_spawned_on_one_host_shows_on_another_with_its_host(team: Team) -> None:
    a, b, _ = team.hosts
    a.ok("spawn", "w1", "--no-launch", "-d", "task one")
    # Claimed there with this clone's identity, and published in its final state.
    held = team.record("w1")
    assert held["state"] == "ready"
    assert held["clone"]["name"] == "host-a"
    assert held["clone"]["id"] == a.git("config", "worker.hostId")
    assert team.refs()["refs/workers/w1"] == a.refs("refs/workers/")["refs/workers/w1"]

    # list uses no network: b has not fetched yet.
    assert b.ok("list").out == "no workers; start one with: git worker spawn ID\n"
    shown = b.ok("list", "--fetch").out.splitlines()
    assert shown[0].split() == ["ID", "HOST", "STATE", "BRANCH", "BASE", "AHEAD", "REVIEW",
                                "AGENT", "AGE", "PATH"]
    assert shown[1].split()[:4] == ["w1", "host-a", "ready", "worker/w1"]
    assert shown[2].startswith("other hosts' workers: as fetched ")
    assert shown[2].endswith(" ago from origin; refresh: git worker list --fetch")
    row, = json.loads(b.ok("list", "--json").out)
    assert (row["id"], row["team"]) == \
        ("w1", {"host": "host-a", "remote": "origin", "read_only": True})
    # Kept out of b's own registry: a read-only view, like refs/remotes/ for branches.
    assert "refs/workers/w1" not in b.refs()
    assert b.refs("refs/workers-remote/")["refs/workers-remote/origin/w1"] == \
        team.refs()["refs/workers/w1"]

    # With workers of its own, b's list has both hosts; a plain list of one host has none.
    b.ok("spawn", "w2", "--no-launch")
    rows = {r["id"]: r for r in json.loads(b.ok("list", "--json").out)}
    assert rows["w2"]["team"] == {"host": "host-b", "remote": "origin", "read_only": False}
    assert rows["w2"]["problems"] == []  # published
    a_rows = a.ok("list").out.splitlines()
    assert "HOST" not in a_rows[0]  # a has not fetched: one host in sight


def test_list_without_a_remote_is_as_before(repo: ClonedRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    assert "HOST" not in repo.ok("list").out
    assert "team" not in json.loads(repo.ok("list", "--json").out)[0]
    assert json.loads(repo.ok("show", "w1", "--json").out)["clone"] is None
    r = repo.worker("publish")
    assert r.code == 1
    assert "worker.remote is not set" in r.err


def test_a_remote_name_that_names_no_remote_is_refused_before_anything(team: Team) -> None:
    a = team.hosts[0]
    a.git("config", "worker.remote", "upstream")
    before = a.snapshot()
    r = a.worker("spawn", "w1", "--no-launch")
    assert r.code == 1
    assert "worker.remote is 'upstream', but this repository has no remote of that name" in r.err
    assert a.snapshot() == before


def _spawner(host: ClonedRepo, worker_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["git", "worker", "spawn", worker_id, "--no-launch"], cwd=host.path,
                            env=host.sandbox.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_hosts_racing_for_one_id_exactly_one_wins_and_the_loser_creates_nothing(
        team: Team) -> None:
    a, b, _ = team.hosts
    for host in (a, b):
        host.ok("fetch")  # each has its hostId and an empty view: only the race differs
    for n in range(6):
        worker_id = f"race-{n}"
        before = {h.path.name: h.snapshot() for h in (a, b)}
        racers = {h.path.name: (h, _spawner(h, worker_id)) for h in (a, b)}
        outcomes = {name: (h, p.wait(timeout=60), p.communicate()) for name, (h, p) in
                    racers.items()}
        winners = [name for name, (_, code, _) in outcomes.items() if code == 0]
        assert len(winners) == 1, {k: (c, o) for k, (_, c, o) in outcomes.items()}
        winner = winners[0]
        loser_name = "host-b" if winner == "host-a" else "host-a"
        loser, code, (_, err) = outcomes[loser_name]
        assert code == 1
        assert f"worker '{worker_id}' is taken on origin by host {winner} (user " in err
        # The loser rolled back its local claim: nothing of it anywhere, here or there.
        after = loser.snapshot()
        assert after["refs"] == {**before[loser_name]["refs"],
                                 **{k: v for k, v in after["refs"].items()
                                    if k.startswith("refs/workers-remote/")}}
        assert after["worktrees"] == before[loser_name]["worktrees"]
        assert after["runtime"] == before[loser_name]["runtime"]
        assert not (loser.workers_dir / worker_id).exists()
        assert team.record(worker_id)["clone"]["name"] == winner
        assert team.refs()[f"refs/workers/{worker_id}"] == \
            outcomes[winner][0].refs("refs/workers/")[f"refs/workers/{worker_id}"]


_UPDATER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {lib!r})
    from git_worker.registry import store
    from git_worker.repo import Repo

    repo = Repo.discover()
    worker_id, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for n in range(count):
        def change(r, n=n):
            r.task.setdefault("notes", []).append(f"{{tag}}-{{n}}")
        store.update(repo, worker_id, change, f"note {{tag}}-{{n}}")
""")


def test_concurrent_changes_on_two_hosts_are_all_published(team: Team, sandbox: Sandbox) -> None:
    a, b, c = team.hosts
    a.ok("spawn", "wa", "--no-launch")
    b.ok("spawn", "wb", "--no-launch")
    script = sandbox.root / "updater.py"
    script.write_text(_UPDATER.format(lib=str(CHECKOUT / "lib")))
    count = 8
    # Two processes per host, each changing its host's record: every change is a local
    # compare-and-swap, then a push with a lease on what was last published.
    procs = [subprocess.Popen([sys.executable, str(script), wid, tag,
                               str(count)], cwd=host.path, env=sandbox.env,
                              stderr=subprocess.PIPE, text=True)
             for host, wid in ((a, "wa"), (b, "wb")) for tag in ("p", "q")]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.communicate()[1]
    c.ok("fetch")
    expected = sorted(f"{t}-{n}" for t in ("p", "q") for n in range(count))
    for host, wid in ((a, "wa"), (b, "wb")):
        assert sorted(host.record(wid)["task"]["notes"]) == expected  # none lost here
        # …and the remote holds exactly the host's latest record: nothing lost there.
        assert team.refs()[f"refs/workers/{wid}"] == host.refs()[f"refs/workers/{wid}"]
        assert sorted(team.record(wid)["task"]["notes"]) == expected
    rows = {r["id"]: r for r in json.loads(c.ok("list", "--json").out)}
    assert (rows["wa"]["team"]["host"], rows["wb"]["team"]["host"]) == ("host-a", "host-b")


def test_removal_is_published(team: Team) -> None:
    a, b, _ = team.hosts
    a.ok("spawn", "w1", "--no-launch")
    assert "refs/workers/w1" in team.refs()
    a.ok("rm", "w1")
    assert "refs/workers/w1" not in team.refs()
    assert ids_of(b.ok("list", "--fetch", "--json").out) == []


def test_an_rm_keeps_the_teams_records_in_lists_record_cache(team: Team) -> None:
    """list keeps the team's records (refs/workers-remote/) in its record cache, as its
    own; an rm here, which reads only this clone's records and saves the cache, keeps them
    there too: the next list does not read every one of them from git again."""
    a, b, _ = team.hosts
    a.ok("spawn", "w1", "--no-launch")
    b.ok("spawn", "w2", "w3", "--no-launch")
    b.ok("list", "--fetch")
    theirs = b.refs("refs/workers-remote/")["refs/workers-remote/origin/w1"]
    cache = b.path / ".git" / "workers" / ".records"

    def cached() -> set[str]:
        lines = cache.read_bytes().split(b"\n")
        return {line.split(b" ")[0].decode() for line in lines
                if re.fullmatch(rb"[0-9a-f]{40} [0-9]+", line)}

    assert theirs in cached()
    b.ok("rm", "w2")
    assert b.refs("refs/workers-remote/")["refs/workers-remote/origin/w1"] == theirs
    assert theirs in cached()
    assert b.refs("refs/workers/")["refs/workers/w3"] in cached()


def test_another_hosts_worker_is_read_only_here(team: Team) -> None:
    a, b, _ = team.hosts
    a.work("w1", "f.txt")
    b.ok("fetch")
    held = team.refs()["refs/workers/w1"]
    # (merge and review fetch its published branch: see the tests below)
    for command in (["rm", "w1"], ["rm", "--force", "w1"], ["stop", "w1"], ["start", "w1"],
                    ["show", "w1"], ["logs", "w1"]):
        r = b.worker(*command)
        assert r.code == 1, command
        assert ("worker 'w1' belongs to host host-a (user " in r.err
                and "another host's workers are read-only here" in r.err), (command, r.err)
    assert team.refs()["refs/workers/w1"] == held
    assert b.ok("publish").out == "up to date with origin\n"
    assert team.refs()["refs/workers/w1"] == held


def test_the_remote_away_spawn_goes_on_and_a_later_publish_sends_it(team: Team) -> None:
    a, b, _ = team.hosts
    away = team.remote.with_name("team.moved")
    team.remote.rename(away)
    r = a.ok("spawn", "w1", "--no-launch")
    assert "spawned w1" in r.out
    assert r.err.startswith("warning: w1: not published: cannot reach origin "
                            "(remote not found: ")
    assert (a.workers_dir / "w1").is_dir()
    row, = json.loads(a.ok("list", "--json").out)
    assert row["problems"] == ["not published to origin yet; run: git worker publish"]
    assert a.worker("fsck").code == 1
    assert "problem: w1: not published to origin (--repair would: publish it)" in \
        a.worker("fsck").out
    # Still away: publish says why, and changes nothing.
    r = a.worker("publish")
    assert r.code == 1
    assert "cannot reach origin (remote not found:" in r.err

    away.rename(team.remote)
    assert a.ok("publish").out.splitlines() == ["published w1 to origin",
                                                "pushed 1 branch(es): worker/w1"]
    assert team.refs()["refs/workers/w1"] == a.refs()["refs/workers/w1"]
    assert team.refs("refs/heads/")["refs/heads/worker/w1"] == a.refs()["refs/heads/worker/w1"]
    assert json.loads(a.ok("list", "--json").out)[0]["problems"] == []
    assert a.ok("fsck").out == "ok: registry, branches and worktrees agree\n"
    assert ids_of(b.ok("list", "--fetch", "--json").out) == ["w1"]


def test_the_next_command_that_reaches_the_remote_publishes_what_waited(team: Team) -> None:
    a, _, _ = team.hosts
    away = team.remote.with_name("team.moved")
    team.remote.rename(away)
    a.ok("spawn", "w1", "--no-launch")
    away.rename(team.remote)
    a.ok("spawn", "w2", "--no-launch")  # reaches it: w1 goes too
    assert set(team.refs()) == {"refs/workers/w1", "refs/workers/w2"}
    assert team.refs()["refs/workers/w1"] == a.refs()["refs/workers/w1"]


def test_a_removal_made_while_away_goes_with_the_next_spawn(team: Team) -> None:
    """What waits may be a removal too: the next spawn that reaches the remote pushes it
    (and leaves another host's worker there alone)."""
    a, b, _ = team.hosts
    a.ok("spawn", "w1", "--no-launch")
    b.ok("spawn", "theirs", "--no-launch")
    a.ok("fetch")
    away = team.remote.with_name("team.moved")
    team.remote.rename(away)
    a.ok("rm", "w1")
    away.rename(team.remote)
    assert "refs/workers/w1" in team.refs()
    a.ok("spawn", "w2", "--no-launch")
    assert set(team.refs()) == {"refs/workers/theirs", "refs/workers/w2"}


def test_an_id_taken_while_away_is_a_conflict_with_both_sides_kept(team: Team) -> None:
    a, b, _ = team.hosts
    away = team.remote.with_name("team.moved")
    team.remote.rename(away)
    a.work("w1", "ours.txt")  # spawned offline, with a commit of its own
    away.rename(team.remote)
    b.ok("spawn", "w1", "--no-launch")  # b claims the same id while a is away
    theirs = team.refs()["refs/workers/w1"]
    ours = a.refs()["refs/workers/w1"]

    r = a.worker("publish")
    assert r.code == 1
    assert "warning: w1: origin holds another host's 'w1' (host host-b (user " in r.err
    # Both kept: b's record on the remote untouched, a's here, b's in a's read-only view.
    assert team.refs()["refs/workers/w1"] == theirs
    assert a.refs()["refs/workers/w1"] == ours
    assert a.refs()["refs/workers-remote/origin/w1"] == theirs
    assert a.git("log", "-1", "--format=%s", "worker/w1") == "w1: ours.txt"
    row, = json.loads(a.ok("list", "--json").out)
    assert row["problems"] == [
        "conflict: origin holds another 'w1', by host host-b (user "
        f"{row['clone']['user']}); both are kept (theirs: refs/workers-remote/origin/w1); "
        "this one is not published"]
    fsck = a.worker("fsck")
    assert fsck.code == 1
    assert "problem: w1: conflict: origin holds another 'w1', by host host-b" in fsck.out
    assert "(needs you: two hosts hold 'w1'" in fsck.out
    assert a.worker("fsck", "--repair").code == 1  # nothing to repair without a human
    assert team.refs()["refs/workers/w1"] == theirs


def test_reach_failures_are_classified(team: Team) -> None:
    a = team.hosts[0]
    # A closed port on this machine: ssh cannot connect (BatchMode: no prompt, no hang).
    a.git("remote", "set-url", "origin", "ssh://127.0.0.1:1/srv/team.git")
    r = a.ok("spawn", "w1", "--no-launch")
    assert "warning: w1: not published: cannot reach origin (network: " in r.err
    r = a.worker("fetch")
    assert r.code == 1
    assert "cannot reach origin (network: " in r.err
    a.git("remote", "set-url", "origin", str(Path(team.remote).with_name("nowhere.git")))
    r = a.worker("fetch")
    assert "cannot reach origin (remote not found: " in r.err
    # list --fetch warns and lists what it has.
    r = a.ok("list", "--fetch")
    assert "warning: cannot reach origin (remote not found: " in r.err
    assert r.out.splitlines()[1].split()[:2] == ["w1", "ready"]


def test_a_workers_branch_is_pushed_when_its_agent_exits(team: Team, sandbox: Sandbox) -> None:
    a, b, _ = team.hosts
    path = sandbox.script("team-agent", """
        echo done > work.txt
        git add work.txt && git commit -q -m "work on $(basename "$PWD")"
    """)
    a.git("config", "worker.agent.stand-in.command", str(path))
    a.ok("spawn", "w1", "-a", "stand-in")
    wait_for(lambda: team.record("w1")["state"] == "exited")
    tip = a.git("rev-parse", "worker/w1")
    wait_for(lambda: team.refs("refs/heads/").get("refs/heads/worker/w1") == tip)
    assert team.refs()["refs/workers/w1"] == a.refs()["refs/workers/w1"]
    b.ok("fetch", "--branches")
    assert b.git("log", "-1", "--format=%s", "origin/worker/w1") == "work on w1"


def test_another_hosts_worker_merges_here_from_its_published_branch(team: Team) -> None:
    a, b, _ = team.hosts
    b.work("w1", "theirs.txt")  # never launched: its state "ready", nothing more to come
    a_main = a.git("rev-parse", "main")
    # Not published yet: its branch goes at agent exit or by publish. Said, nothing changed.
    r = a.worker("merge", "w1")
    assert r.code == 1
    assert ("'w1' is the worker of host host-b (user " in r.err
            and "its branch worker/w1 is not published on origin" in r.err), r.err
    assert "hint: on that host: git worker publish w1" in r.err
    assert a.git("rev-parse", "main") == a_main

    b.ok("publish", "w1")
    held = team.refs()["refs/workers/w1"]
    r = a.ok("merge", "w1")  # fetched first: a has never run fetch
    tip = b.git("rev-parse", "worker/w1")
    assert r.out.splitlines() == [
        f"merged w1 into main as {tip[:12]} (fast-forward); updated the worktree {a.path}",
        "next, on host host-b (user " + b.record("w1")["clone"]["user"] + "): git worker rm w1"
        "  (its record, worktree and branch are there; its record here is read-only)"]
    assert a.git("rev-parse", "main") == tip
    assert a.git("log", "-1", "--format=%s", "main") == "w1: theirs.txt"
    # The record is host-b's: unchanged there and on the remote, still read-only here.
    assert team.refs()["refs/workers/w1"] == held == b.refs()["refs/workers/w1"]
    assert "refs/workers/w1" not in a.refs()
    assert b.show("w1")["state"] == "ready"
    again = a.ok("merge", "w1")
    assert again.out.splitlines()[0] == "nothing to merge: w1 is already in main"


def test_merging_another_hosts_running_worker_or_with_the_remote_away_is_refused(
        team: Team, sandbox: Sandbox) -> None:
    a, b, _ = team.hosts
    agent = sandbox.script("busy-agent", """
        echo done > work.txt
        git add work.txt && git commit -q -m "work on $(basename "$PWD")"
        exec sleep 600
    """)
    b.git("config", "worker.agent.stand-in.command", str(agent))
    b.git("config", "worker.launcher", "detached")
    b.ok("spawn", "w1", "-a", "stand-in")
    wait_for(lambda: b.git("log", "-1", "--format=%s", "worker/w1") == "work on w1")
    b.ok("publish", "w1")
    a_main = a.git("rev-parse", "main")
    try:
        r = a.worker("merge", "w1")
        assert r.code == 1
        assert ("refusing to merge 'w1': its agent is still running on host host-b (user "
                in r.err and "as last published, and may commit more" in r.err), r.err

        away = team.remote.with_name("team.moved")
        team.remote.rename(away)
        r = a.worker("merge", "--force", "w1")
        assert r.code == 1
        assert "cannot reach origin (remote not found: " in r.err
        assert "'w1' is not this clone's worker, and another host's is fetched from origin" \
            in r.err
        away.rename(team.remote)
        assert a.git("rev-parse", "main") == a_main

        r = a.worker("merge", "nobody")
        assert r.code == 1
        assert "error: no worker 'nobody'" in r.err
    finally:
        b.ok("stop", "w1")


def test_another_hosts_worker_is_reviewed_here_and_then_merges_under_review_rules(
        team: Team, sandbox: Sandbox) -> None:
    a, b, _ = team.hosts
    gate = sandbox.script("team-gate", """
        echo "gate: $GIT_WORKER_ID at $GIT_WORKER_COMMIT"
        test -f theirs.txt
    """)
    a.git("config", "worker.reviewGate", str(gate))
    a.git("config", "worker.review", "true")  # here, merge needs a passed review
    tip = b.work("w1", "theirs.txt")
    b.ok("publish", "w1")
    held = team.refs()["refs/workers/w1"]
    r = a.worker("merge", "w1")
    assert r.code == 1
    assert "refusing to merge 'w1': review is on" in r.err and "was never reviewed" in r.err

    r = a.ok("review", "w1")
    lines = r.out.splitlines()
    assert lines[0].startswith("reviewing w1 (the worker of host host-b (user ")
    assert lines[0].endswith(f"), at its published {tip[:12]}) with: {gate}")
    assert lines[1] == f"gate: w1 at {tip}"  # run on its published tip, here
    assert lines[2].startswith("passed: w1 may be merged (git worker merge w1); log: ")
    # The verdict is this clone's: host-b's record is untouched.
    assert team.refs()["refs/workers/w1"] == held == b.refs()["refs/workers/w1"]
    assert "review" not in b.record("w1") or b.record("w1")["review"].get("status") is None
    a.ok("merge", "w1")
    assert a.git("rev-parse", "main") == tip

    # Host-b's agent goes on: a newer tip, that the gate blocks. The pass was for the old
    # tip, so merge refuses; so does the blocking verdict.
    wt = b.workers_dir / "w1"
    b.git("rm", "-q", "theirs.txt", cwd=wt)
    b.git("commit", "-q", "-m", "w1: undo", cwd=wt)
    b.ok("publish", "w1")
    r = a.worker("merge", "w1")
    assert r.code == 1
    assert f"its review passed for {tip[:12]}, but the branch has moved to " in r.err
    r = a.worker("review", "w1")
    assert r.code == 1
    assert "blocked: the review gate exited 1 for w1" in r.err
    r = a.worker("merge", "w1")
    assert r.code == 1
    assert "refusing to merge 'w1': its last review blocked (gate exit 1" in r.err
    assert a.git("rev-parse", "main") == tip


def test_land_takes_another_hosts_worker_with_ours_through_the_gate(
        team: Team, sandbox: Sandbox) -> None:
    a, b, _ = team.hosts
    gate = sandbox.script("land-gate", """
        echo "gate: $GIT_WORKER_LANDING"
        test ! -f bad.txt
    """)
    a.git("config", "worker.reviewGate", str(gate))
    a.work("mine", "mine.txt")
    theirs = b.work("w1", "theirs.txt")
    b.work("w2", "bad.txt")
    b.ok("publish")
    held = team.refs()
    r = a.worker("land", "mine", "w1", "w2", "--json")
    assert r.code == 1  # w2 blocked
    results = {x["id"]: x for x in json.loads(r.out)}
    assert (results["mine"]["result"], results["w1"]["result"], results["w2"]["result"]) == \
        ("landed", "landed", "blocked")
    main = a.git("rev-parse", "main")
    assert results["w1"]["commit"] == main
    assert a.git("merge-base", "--is-ancestor", theirs, "main") == ""
    assert not (a.path / "bad.txt").exists()
    assert a.record("mine")["state"] == "merged"
    # Host-b's records are its own: unchanged on the remote and there; nothing of them here.
    assert team.refs() == {**held, "refs/workers/mine": a.refs()["refs/workers/mine"]}
    assert not [r for r in a.refs() if r in ("refs/workers/w1", "refs/workers/w2")]
    assert not (a.path / ".git" / "workers" / "w1").exists()
    # The verdicts stay here: merge reads w2's blocked one.
    r = a.worker("merge", "w2")
    assert r.code == 1
    assert "refusing to merge 'w2': its last review blocked (gate exit 1" in r.err


def test_start_claims_an_unpublished_worker_first_and_a_taken_id_starts_nothing(
        team: Team, sandbox: Sandbox) -> None:
    a, b, _ = team.hosts
    agent = sandbox.script("start-agent", "echo started > started.txt")
    a.git("config", "worker.agent.stand-in.command", str(agent))
    away = team.remote.with_name("team.moved")
    team.remote.rename(away)
    a.ok("spawn", "w1", "--no-launch", "-a", "stand-in")  # offline: not published
    a.ok("spawn", "w2", "--no-launch", "-a", "stand-in")
    away.rename(team.remote)
    b.ok("spawn", "w1", "--no-launch")  # b takes w1 meanwhile
    theirs = team.refs()["refs/workers/w1"]
    ours = a.refs()["refs/workers/w1"]

    r = a.worker("start", "w1", "-a", "stand-in")
    assert r.code == 1
    assert "error: w1: worker 'w1' is taken on origin by host host-b (user " in r.err
    assert a.refs()["refs/workers/w1"] == ours  # nothing started, both records kept
    assert a.record("w1")["state"] == "ready"
    assert not (a.workers_dir / "w1" / "started.txt").exists()
    assert team.refs()["refs/workers/w1"] == theirs

    a.ok("start", "w2", "-a", "stand-in")  # free there: claimed, then started
    assert team.record("w2")["clone"]["name"] == "host-a"
    wait_for(lambda: (a.workers_dir / "w2" / "started.txt").exists())


def test_a_worker_its_host_merged_there_still_merges_here(team: Team) -> None:
    a, b, _ = team.hosts
    tip = b.work("w1", "theirs.txt")
    b.ok("merge", "w1")  # into b's main (not pushed): its record says merged, there
    b.ok("publish", "w1")
    assert team.record("w1")["state"] == "merged"
    r = a.ok("merge", "w1")
    assert r.out.startswith(f"merged w1 into main as {tip[:12]} (fast-forward)")
    assert a.git("rev-parse", "main") == tip
