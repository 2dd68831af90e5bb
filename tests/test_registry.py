"""The registry lives in refs/workers/<id>: one commit per state change, readable with
plain git, updated only by compare-and-swap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import GitRepo, Sandbox, release, wait_for


def test_record_and_history_are_plain_git(repo: GitRepo, held: Path) -> None:
    repo.ok("spawn", "w1", "-d", "task text")
    # Released once the spawn is recorded (a quick agent's exit may be recorded first);
    # then until the registry has the exit (list and show derive it sooner, from the
    # exit file).
    release(repo, "w1")
    wait_for(lambda: repo.record("w1")["state"] == "exited")
    log = repo.git("log", "--format=%s", "refs/workers/w1").splitlines()
    # The claim, then the spawn's end (its lease rides on that commit), then the exit.
    assert log == ["exited 0", "spawn: running", "spawn: claimed"]
    assert repo.git("log", "-1", "--format=%an <%ae>", "refs/workers/w1") == \
        "git-worker <git-worker@localhost>"
    first = json.loads(repo.git("show", "refs/workers/w1~2:worker.json"))
    assert first["state"] == "spawning"
    assert first["owner"]["pid"] > 0 and first["owner"]["action"] == "spawn"
    last = repo.record("w1")
    assert last["state"] == "exited" and last["exit_code"] == 0 and last["owner"] is None
    assert repo.git("ls-tree", "--name-only", "refs/workers/w1") == "worker.json"
    reflog = repo.git("reflog", "show", "--format=%gs", "refs/workers/w1").splitlines()
    assert reflog[0] == "git-worker: exited 0"


def test_show_history_lists_every_event(repo: GitRepo) -> None:
    repo.ok("spawn", "w1", "--no-launch")
    out = repo.ok("show", "w1", "--history").out
    events = [line.split("  ")[-1] for line in out.split("\n\n")[1].splitlines()]
    assert events == ["spawn: ready", "spawn: claimed"]
    assert repo.record("w1")["leases"] == {"ports": [], "slot": 1}
    shown = json.loads(repo.ok("show", "w1", "--json", "--history").out)
    assert [e["event"] for e in shown["history"]] == events


@pytest.mark.race
def test_update_racing_plain_git_update_ref_loses_nothing(sandbox: Sandbox, repo: GitRepo) -> None:
    """Our CAS and git's own locking agree: interleaved writers never lose an update."""
    repo.ok("spawn", "w1", "--no-launch")
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from git_worker.repo import Repo\nfrom git_worker.registry import store\n"
        "repo = Repo.discover(sys.argv[2])\n"
        "for i in range(15):\n"
        "    store.update(repo, 'w1', lambda r: r.task.update(n=r.task.get('n', 0) + 1),"
        " f'bump {i}')\n"
    )
    from conftest import CHECKOUT

    ours = [subprocess.Popen([sys.executable, "-c", script, str(CHECKOUT / "lib"), str(repo.path)],
                             env=sandbox.env) for _ in range(2)]
    # Meanwhile plain git moves the same ref to a commit with the same record, many times.
    for i in range(15):
        tip = repo.git("rev-parse", "refs/workers/w1")
        tree = repo.git("rev-parse", f"{tip}^{{tree}}")
        new = repo.git("commit-tree", tree, "-p", tip, "-m", f"plain git {i}")
        repo.sandbox.run("git", "update-ref", "refs/workers/w1", new, tip, cwd=repo.path)
    assert [p.wait(60) for p in ours] == [0, 0]
    assert repo.record("w1")["task"]["n"] == 30
    assert len(repo.git("log", "--format=%s", "--grep=bump", "refs/workers/w1").splitlines()) == 30


def test_a_corrupt_record_does_not_break_list(repo: GitRepo) -> None:
    repo.ok("spawn", "good", "--no-launch")
    blob = repo.sandbox.run("git", "hash-object", "-w", "--stdin", cwd=repo.path,
                            input="not json").out.strip()
    repo.git("update-ref", "refs/workers/blob-ref", blob)
    tree = repo.sandbox.run("git", "mktree", cwd=repo.path,
                            input=f"100644 blob {blob}\tworker.json\n").out.strip()
    repo.git("update-ref", "refs/workers/bad-json", repo.git("commit-tree", tree, "-m", "x"))
    rows = {r["id"]: r for r in json.loads(repo.ok("list", "--json").out)}
    assert rows["good"]["state"] == "ready" and rows["good"]["problems"] == []
    assert rows["blob-ref"]["state"] == "corrupt"
    assert "not a commit" in rows["blob-ref"]["problems"][0]
    assert rows["bad-json"]["state"] == "corrupt"
    human = repo.ok("list").out
    assert "bad-json  corrupt" in human and "run: git worker fsck" in human


def test_one_record_is_read_from_the_files_as_git_reads_it(repo: GitRepo) -> None:
    """store.read (show, stop, start…) reads a worker's ref and record from their files
    (no git process): the record git reads, whether the ref is loose or packed; a broken
    ref or one that points to no commit is an unreadable record, as for-each-ref has it."""
    from git_worker.registry import store
    from git_worker.repo import Repo

    repo.ok("spawn", "w1", "w2", "--no-launch")
    git_repo = Repo.discover(str(repo.path))
    by_git = json.loads(repo.git("cat-file", "blob", "refs/workers/w1:worker.json"))
    entry = store.read(git_repo, "w1")
    assert entry is not None and entry.oid == repo.git("rev-parse", "refs/workers/w1")
    assert entry.record.as_dict() == by_git
    repo.git("pack-refs", "--all")
    assert not (repo.path / ".git" / "refs" / "workers" / "w1").exists()
    packed = store.read(Repo.discover(str(repo.path)), "w1")
    assert packed is not None and packed.record.as_dict() == by_git
    assert store.read(git_repo, "nobody") is None
    # A ref file whose first 40 bytes hold a line break and another record's abbreviated
    # commit: read as broken, never as object names handed to `git cat-file --batch`.
    w1 = repo.git("rev-parse", "refs/workers/w1")
    (repo.path / ".git" / "refs" / "workers" / "w2").write_text(f"x\n{w1[:38]}")
    blob = repo.git("rev-parse", "refs/workers/w1:worker.json")
    repo.git("update-ref", "refs/workers/blob-ref", blob)
    for worker_id, why in (("w2", "missing object (invalid)"), ("blob-ref", "not a commit")):
        r = repo.worker("show", worker_id)
        assert r.code == 1 and f"the registry record of '{worker_id}' is unreadable" in r.err \
            and why in r.err, r.err


def runtime_file_literals(lib: Path) -> list[str]:
    """Where a module of ``lib`` other than registry/runtime.py spells a runtime file name.

    A name that is also a word of another vocabulary ("exit" for ssh -O, "waiting" and
    "started" for states and hook events) counts only as a path: an argument of
    os.path.join, or a "/name" in an f-string."""
    import ast

    from git_worker.registry import runtime

    names = {value for key, value in vars(runtime).items()
             if key.isupper() and isinstance(value, str)}
    words = {name for name in names if name.isalpha()}
    found = []
    for path in sorted(lib.rglob("*.py")):
        if path.relative_to(lib).as_posix() == "git_worker/registry/runtime.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        joined = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
                  and ast.unparse(node.func) == "os.path.join" for arg in node.args}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            text = node.value
            spelled = ({text} & (names - words)
                       or (text in words and id(node) in joined)
                       or (text.startswith("/") and text[1:] in names))
            if spelled:
                found.append(f"{path.relative_to(lib)}:{node.lineno}: {text!r}")
    return found


def test_runtime_file_names_are_spelled_only_in_registry_runtime() -> None:
    """Each file of a worker's runtime dir is named once (registry/runtime.py, RuntimeDir);
    a second spelling elsewhere drifts from it unnoticed."""
    from conftest import CHECKOUT

    assert runtime_file_literals(CHECKOUT / "lib") == []


@pytest.mark.parametrize("parent", [None, "4b825dc642cb6eb9a060e54bf8d69288fbee4904"])
def test_record_commits_are_the_objects_dulwich_writes(repo: GitRepo,
                                                       parent: str | None) -> None:
    """The registry writes its blob, tree and commit itself (not through dulwich.objects,
    whose import costs every write ~7 ms): the same bytes, the same ids, and objects that
    `git fsck --strict` accepts."""
    from dulwich.objects import Blob, Commit, Tree

    from git_worker.registry import store
    from git_worker.registry.record import Record
    from git_worker.repo import IDENTITY, Repo

    record = Record.from_json(json.dumps({
        "id": "w1", "branch": "refs/heads/worker/w1", "worktree": "/tmp/w1", "state": "ready",
        "base": {"name": "main", "oid": "0" * 40}, "created_at": "2026-12-02T00:00:00Z",
    }).encode())
    git_repo = Repo.discover(str(repo.path))
    oid = store._write_commit(git_repo, record, parent, "spawn: ready")
    blob = Blob.from_string(record.to_json())
    tree = Tree()
    tree.add(b"worker.json", 0o100644, blob.id)
    commit = Commit()
    commit.tree = tree.id
    commit.parents = [parent.encode()] if parent else []
    commit.author = commit.committer = IDENTITY
    written = repo.git("cat-file", "commit", oid)
    when = int(written.split("\ncommitter ")[1].split("\n")[0].split(" ")[-2])
    commit.author_time = commit.commit_time = when
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"spawn: ready\n"
    assert oid == commit.id.decode()
    assert repo.git("cat-file", "blob", f"{oid}:worker.json") + "\n" == record.to_json().decode()
    if parent is None:  # (the other's parent is an empty tree, not a commit: fsck objects)
        repo.git("update-ref", "refs/test/record", oid)
        repo.git("fsck", "--strict", "--no-progress")


@pytest.mark.parametrize("builtin_sha1", [True, False])
def test_objects_are_written_as_git_writes_them(repo: GitRepo, builtin_sha1: bool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Repo.write_object names and stores an object as git does, whether Python has its own
    SHA-1 (_sha1) or only hashlib's."""
    from git_worker.repo import Repo

    if not builtin_sha1:
        monkeypatch.setitem(sys.modules, "_sha1", None)  # import fails: hashlib's is used
    content = b"a record \xc3\xa9\n"
    (repo.sandbox.root / "blob").write_bytes(content)
    oid = Repo.discover(str(repo.path)).write_object("blob", content)
    assert oid == repo.git("hash-object", str(repo.sandbox.root / "blob"))
    assert repo.git("cat-file", "-p", oid) == content.decode().rstrip("\n")
    repo.git("fsck", "--no-progress")


def test_a_record_read_from_its_loose_objects_is_the_one_git_reads(repo: GitRepo) -> None:
    """rm reads a record's commit, tree and worker.json from their loose object files
    (Repo.read_loose_object, the mirror of write_object), not by `git cat-file`: the same
    record. Once `git gc` has packed them, or where a file is not exactly what
    write_object writes, nothing is read from the files and git is asked."""
    from git_worker.registry import store
    from git_worker.repo import Repo

    repo.ok("spawn", "--no-launch", "w1")
    git_repo = Repo.discover(str(repo.path))
    refs = git_repo.ref_table("refs/workers/")
    oid = refs["refs/workers/w1"]
    data = repo.git("cat-file", "blob", f"{oid}:worker.json") + "\n"
    assert store._read_loose(git_repo, oid) == data.encode()
    [loose], [batch] = (store.all_entries(git_repo, refs, loose=True),
                        store.all_entries(git_repo, refs))
    assert isinstance(loose, store.Entry) and isinstance(batch, store.Entry)
    assert (loose.oid, loose.record.to_json()) == (batch.oid, batch.record.to_json())
    blob = repo.git("rev-parse", f"{oid}:worker.json")
    tree = repo.git("rev-parse", f"{oid}^{{tree}}")
    assert git_repo.read_loose_object(tree) == ("tree", b"100644 worker.json\0"
                                                 + bytes.fromhex(blob))
    assert git_repo.read_loose_object(blob) == ("blob", data.encode())
    # The blob's file damaged where zlib cannot see it: content that is not its OID's.
    path = repo.path / ".git" / "objects" / blob[:2] / blob[2:]
    path.chmod(0o644)
    path.write_bytes(zlib.compress(b"blob 2\0{}"))
    assert git_repo.read_loose_object(blob) is None
    assert store._read_loose(git_repo, oid) is None
    for damaged in (b"not zlib", zlib.compress(b"blob 3\0{}"), zlib.compress(b"blob")):
        path.write_bytes(damaged)
        assert git_repo.read_loose_object(blob) is None, damaged
    path.unlink()  # as after `git gc`: not loose
    assert git_repo.read_loose_object(blob) is None
    # An object whose file is larger than one read: read whole.
    big = os.urandom(200_000)
    assert git_repo.read_loose_object(git_repo.write_object("blob", big)) == ("blob", big)


def test_rm_reads_loose_records_only_up_to_where_one_cat_file_is_cheaper(
        repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past store._LOOSE_AT_MOST records, one `git cat-file` reads them all: it costs a
    process, then less a record than three files each."""
    from git_worker.registry import store
    from git_worker.repo import Repo

    repo.ok("spawn", "--no-launch", "w1", "w2")
    git_repo = Repo.discover(str(repo.path))
    refs = git_repo.ref_table("refs/workers/")
    asked: list[int] = []
    read_objects = git_repo.read_objects
    monkeypatch.setattr(git_repo, "read_objects",
                        lambda specs: asked.append(len(specs)) or read_objects(specs))
    for at_most, git_reads in ((2, 0), (1, 4)):  # two objects a record: commit, worker.json
        monkeypatch.setattr(store, "_LOOSE_AT_MOST", at_most)
        asked.clear()
        entries = store.all_entries(git_repo, refs, loose=True)
        assert [e.record.id for e in entries if isinstance(e, store.Entry)] == ["w1", "w2"]
        assert sum(asked) == git_reads
