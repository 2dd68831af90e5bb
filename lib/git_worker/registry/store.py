"""The registry's store: one ref per worker, refs/workers/<id>, in the repository itself.

Each ref points to a commit whose tree holds `worker.json`; every state change is a new
commit whose parent is the previous state and whose message is the event. So
`git show refs/workers/<id>:worker.json` is the current record and
`git log refs/workers/<id>` its history, with plain git. Every write is a
compare-and-swap against the commit read before it: two processes can never both own
an id, and no update is lost.
"""

from __future__ import annotations

import os
import time

from git_worker import refnames
from git_worker.errors import WorkerError
from git_worker.registry.record import RECORD_FILE, Corrupt, Record, now
from git_worker.registry.runtime import RuntimeDir, remove_runtime_dir
from git_worker.repo import IDENTITY, Repo

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from git_worker.registry.record_cache import RecordCache

_CAS_ATTEMPTS = 20
# Up to this many records, read_tables(loose=True) reads loose object files rather than
# start a `git cat-file` (measured, 24 records: 1.6 ms read from their files, 5.6 ms by
# cat-file — its process ~4 ms, then ~0.05 ms a record either way: even at ~100).
_LOOSE_AT_MOST = 64


class Entry:
    """A record as read, with the commit it was read from (for compare-and-swap)."""

    def __init__(self, record: Record, oid: str) -> None:
        self.record = record
        self.oid = oid


# --- reading -----------------------------------------------------------------------------


def read(repo: Repo, worker_id: str) -> Entry | None:
    return find(read_one(repo, worker_id), worker_id)


def read_one(repo: Repo, worker_id: str,
             prefix: str = refnames.REGISTRY) -> list[Entry | Corrupt]:
    """The record under ``prefix`` + ``worker_id`` (none, or one, maybe unreadable): its
    ref read from the ref files (Repo.read_ref) and its objects from their loose files
    where they are (read_tables) — no git process when both are, where a `for-each-ref`
    and a `cat-file` ran (~4 ms)."""
    ref = prefix + worker_id
    oid = repo.read_ref(ref)
    if oid is None:
        return []
    oid = oid.lower()  # git reads either case
    if len(oid) != 40 or oid.strip("0123456789abcdef"):
        oid = ""  # a broken ref, as for-each-ref reports one: an unreadable record
    return read_tables(repo, [({ref: oid}, prefix)], loose=True)[0]


def find(entries: list[Entry | Corrupt], worker_id: str) -> Entry | None:
    """``worker_id``'s entry among ``entries`` (as read() says it: None, or an error for
    an unreadable record)."""
    matches = [e for e in entries
               if (e.id if isinstance(e, Corrupt) else e.record.id) == worker_id]
    if not matches:
        return None
    found = matches[0]
    if isinstance(found, Corrupt):
        raise WorkerError(
            f"the registry record of '{worker_id}' is unreadable: {found.reason}",
            hint="run: git worker fsck",
        )
    return found


def get(repo: Repo, worker_id: str, entries: list[Entry | Corrupt] | None = None) -> Entry:
    """``entries``: every record, if the caller has just read them (all_entries)."""
    entry = read(repo, worker_id) if entries is None else find(entries, worker_id)
    if entry is None:
        from git_worker import team  # only when the id is not ours: is it another host's?

        team.refuse_foreign(repo, worker_id)
        raise WorkerError(f"no worker '{worker_id}'", hint="git worker list shows the workers")
    return entry


def all_entries(repo: Repo, refs: dict[str, str] | None = None, *,
                cache: RecordCache | None = None, loose: bool = False,
                fresh: str | None = None) -> list[Entry | Corrupt]:
    """Every record, read in two git processes (no dulwich import: list is a hot path).

    ``refs``, a ref table the caller has read already (Repo.ref_table), saves one;
    ``cache``, the records read before (see record_cache.py), the second, or its work;
    ``loose``, records read from their object files where they are loose (see
    read_tables), the second too when all are; ``fresh``: see read_tables. The records
    of the team's refs in ``refs`` (read by list, not here) stay in the ``cache``."""
    if refs is None:
        return _read_refs(repo, refnames.REGISTRY)
    return read_tables(repo, [({r: o for r, o in refs.items()
                                if r.startswith(refnames.REGISTRY)}, refnames.REGISTRY)],
                       cache=cache, loose=loose, fresh=fresh,
                       keep=[o for r, o in refs.items() if r.startswith(refnames.TEAM)])[0]


def _read_refs(repo: Repo, pattern: str) -> list[Entry | Corrupt]:
    return _parse_table(repo, repo.ref_table(pattern))


def _parse_table(repo: Repo, refs: dict[str, str],
                 prefix: str = refnames.REGISTRY) -> list[Entry | Corrupt]:
    """Records from a ref table (each ref named ``prefix`` + id): each commit and its
    worker.json, in one cat-file."""
    return read_tables(repo, [(refs, prefix)])[0]


def read_tables(repo: Repo, tables: list[tuple[dict[str, str], str]], *,
                cache: RecordCache | None = None, loose: bool = False,
                fresh: str | None = None, keep: list[str] | None = None,
                ) -> list[list[Entry | Corrupt]]:
    """The records of several ref tables (refs, prefix before the id), in one cat-file:
    list reads this clone's and the team's (refs/workers-remote/) together. With a
    ``cache``, only the records it does not hold are read (and it learns them) — except
    the record of ref ``fresh``, always read from git (rm's own: see record_cache.py);
    it keeps the records of these and of the commits ``keep`` (the team's, to rm), no others.

    ``loose`` (rm): a few records are read from their loose object files (_read_loose),
    not by a `git cat-file` (a process, ~4 ms); a record that is not loose exactly as
    _write_commit wrote it (packed by `git gc`, damaged, another shape) is read by git as
    before, which reads packs and reports damage. list and fsck read many records, which
    one cat-file reads faster than files one by one."""
    rows = [(ref, oid, prefix) for refs, prefix in tables for ref, oid in sorted(refs.items())]
    known = [cache.get(oid) if cache is not None and oid and ref != fresh else None
             for ref, oid, _ in rows]
    if loose and known.count(None) <= _LOOSE_AT_MOST:
        for n, (_, oid, _) in enumerate(rows):
            if known[n] is None and (data := _read_loose(repo, oid)) is not None:
                known[n] = data
                if cache is not None and rows[n][0] != fresh:
                    cache.put(oid, data)
    unknown = [row for row, data in zip(rows, known, strict=True) if data is None]
    objects = repo.read_objects([spec for _, oid, _ in unknown
                                 for spec in (oid or "0" * 40, f"{oid}:{RECORD_FILE}")])
    read = iter(_parse_rows(unknown, objects, cache, fresh))
    found = [next(read) if data is None else parse(ref[len(prefix):], oid, data)
             for (ref, oid, prefix), data in zip(rows, known, strict=True)]
    if cache is not None:
        cache.save([*(oid for ref, oid, _ in rows if ref != fresh), *(keep or ())])
    result, start = [], 0
    for refs, _ in tables:
        result.append(found[start:start + len(refs)])
        start += len(refs)
    return result


def _parse_rows(rows: list[tuple[str, str, str]], objects: list[tuple[str, bytes] | None],
                cache: RecordCache | None = None,
                fresh: str | None = None) -> list[Entry | Corrupt]:
    result: list[Entry | Corrupt] = []
    for n, (ref, oid, prefix) in enumerate(rows):
        worker_id = ref[len(prefix) :]
        head, record = objects[2 * n], objects[2 * n + 1]
        if head is None:
            result.append(Corrupt(worker_id, oid, f"it points to a missing object "
                                                  f"({oid or 'invalid'})"))
        elif head[0] != "commit":
            # git reads <tree>:worker.json or <tag>:worker.json just as well, but a record
            # is a commit: the next update would chain its history onto a non-commit.
            result.append(Corrupt(worker_id, oid, f"{oid} is a {head[0]}, not a commit"))
        elif record is None or record[0] != "blob":
            result.append(Corrupt(worker_id, oid, f"commit {oid} has no {RECORD_FILE}"))
        else:
            if cache is not None and ref != fresh:
                cache.put(oid, record[1])
            result.append(parse(worker_id, oid, record[1]))
    return result


def _read_loose(repo: Repo, oid: str) -> bytes | None:
    """The worker.json of record commit ``oid`` when the commit, its tree and the blob are
    loose objects of the shape _write_commit writes (a tree of worker.json alone); None
    otherwise (git is asked then)."""
    commit = repo.read_loose_object(oid)
    if commit is None or commit[0] != "commit" or not commit[1].startswith(b"tree "):
        return None
    tree = repo.read_loose_object(commit[1][5:45].decode("ascii", "replace"))
    entry = f"100644 {RECORD_FILE}\0".encode()
    if tree is None or tree[0] != "tree" or len(tree[1]) != len(entry) + 20 \
            or not tree[1].startswith(entry):
        return None
    blob = repo.read_loose_object(tree[1][len(entry):].hex())
    return blob[1] if blob is not None and blob[0] == "blob" else None


def _why_unreadable(repo: Repo, oid: str) -> str:
    kind = repo.object_types([oid])[0]
    if kind == "missing":
        return f"it points to a missing object ({oid or 'invalid'})"
    if kind != "commit":
        return f"{oid} is a {kind}, not a commit"
    return f"commit {oid} has no {RECORD_FILE}"


def parse(worker_id: str, oid: str, data: bytes) -> Entry | Corrupt:
    try:
        record = Record.from_json(data)
    except (ValueError, TypeError) as e:
        return Corrupt(worker_id, oid, f"{RECORD_FILE}: {e}")
    if worker_id and record.id != worker_id:  # e.g. a ref copied under another name
        return Corrupt(worker_id, oid, f"{RECORD_FILE} is the record of '{record.id}'")
    return Entry(record, oid)


def ids(repo: Repo) -> list[str]:
    return sorted(repo.refs_under(refnames.REGISTRY))


def history(repo: Repo, worker_id: str) -> Iterator[tuple[str, int, str, Record | None]]:
    """(commit, time, event, record) from newest to oldest."""
    oid: str | None = get(repo, worker_id).oid
    while oid:
        commit = repo.commit(oid)
        found = _load(repo, worker_id, oid)
        record = found.record if isinstance(found, Entry) else None
        yield oid, commit.commit_time, commit.message.decode(errors="replace").strip(), record
        oid = commit.parents[0].decode() if commit.parents else None


def _load(repo: Repo, worker_id: str, oid: str) -> Entry | Corrupt:
    try:
        commit = repo.commit(oid)
        tree = repo.objects[commit.tree]
        _, blob_id = tree[RECORD_FILE.encode()]  # type: ignore[index]
        data = repo.objects[blob_id].data  # type: ignore[attr-defined]
    except (WorkerError, KeyError) as e:
        return Corrupt(worker_id, oid, str(e) or type(e).__name__)
    return parse(worker_id, oid, data)


# --- writing -----------------------------------------------------------------------------


def _write_commit(repo: Repo, record: Record, parent: str | None, event: str) -> str:
    """The record as a commit of one file (written as git writes objects: the bytes dulwich's
    Blob, Tree and Commit made, without importing them, ~9 ms of every spawn)."""
    record.updated_at = now()
    blob = repo.write_object("blob", record.to_json())
    tree = repo.write_object("tree", f"100644 {RECORD_FILE}\0".encode() + bytes.fromhex(blob))
    stamp = f"{IDENTITY.decode()} {int(time.time())} +0000"
    head = [f"tree {tree}", *([f"parent {parent}"] if parent else []),
            f"author {stamp}", f"committer {stamp}"]
    return repo.write_object("commit", ("\n".join(head) + f"\n\n{event}\n").encode())


def claim(repo: Repo, record: Record, event: str = "spawn: claimed", *,
          also: dict[str, str] | None = None, message: str | None = None) -> Entry:
    """Create refs/workers/<id>; only one process can ever win this for an id.

    ``also``: more refs (name -> OID) created in the same transaction — all or none (spawn's
    branch: one `git update-ref` where two ran). ``message``: the reflog's, for them all.
    Raises when one of them exists already: the caller reads which.
    """
    oid = _write_commit(repo, record, None, event)
    refs = {refnames.registry(record.id): oid, **(also or {})}
    if not repo.create_refs(refs, message or f"git-worker: {event}"):
        raise WorkerError(f"worker '{record.id}' already exists")
    return Entry(record, oid)


def update(
    repo: Repo, worker_id: str, change: Callable[[Record], None], event: str,
    *, current: Entry | None = None,
) -> Entry:
    """Apply ``change`` to the current record and commit it, as a compare-and-swap.

    ``current``, if the caller holds the entry it last wrote, saves a re-read. When another
    process moved the ref in between, re-read and re-apply: no update is lost. Raises
    WorkerError when the worker was removed meanwhile.
    """
    ref = refnames.registry(worker_id)
    for _ in range(_CAS_ATTEMPTS):
        entry = current or get(repo, worker_id)
        current = None
        change(entry.record)
        new = _write_commit(repo, entry.record, entry.oid, event)
        if repo.update_ref(ref, entry.oid, new, f"git-worker: {event}"):
            _share(repo, worker_id)
            return Entry(entry.record, new)
    raise WorkerError(f"worker '{worker_id}' keeps changing under us; try again")


def take(repo: Repo, entry: Entry, change: Callable[[Record], None], event: str) -> Entry | None:
    """Commit ``change`` to the record only if it is still exactly ``entry`` (one
    compare-and-swap, never re-applied to a newer version, unlike update()); None when it
    moved meanwhile. For acting on what was read: recovery judging a spawn abandoned."""
    change(entry.record)
    new = _write_commit(repo, entry.record, entry.oid, event)
    if not repo.update_ref(refnames.registry(entry.record.id), entry.oid, new,
                           f"git-worker: {event}"):
        return None
    _share(repo, entry.record.id)
    return Entry(entry.record, new)


def set_state(repo: Repo, worker_id: str, state: str, event: str | None = None) -> Entry:
    def change(r: Record) -> None:
        r.state = state

    return update(repo, worker_id, change, event or state)


def remove(repo: Repo, worker_id: str, oid: str, *,
           also: dict[str, str] | None = None) -> bool:
    """Delete the record if it is still at ``oid``. ``also``: more refs (name -> the OID
    each must still be at) deleted in the same transaction: all or none."""
    ref = refnames.registry(worker_id)
    removed = repo.delete_refs({**(also or {}), ref: oid}, "git-worker: removed")
    if removed:
        _share(repo, worker_id)
    return removed


def _share(repo: Repo, worker_id: str) -> None:
    """With worker.remote, publish the change to the team's registry (see team.py)."""
    from git_worker import team

    team.after_write(repo, worker_id)


def last_readable(repo: Repo, oid: str, worker_id: str = "") -> Record | None:
    """The newest readable record (of ``worker_id``, if given) in the history below ``oid``."""
    try:
        parents = repo.commit(oid).parents
    except WorkerError:
        return None
    while parents:
        parent = parents[0].decode()
        found = _load(repo, worker_id, parent)
        if isinstance(found, Entry):
            return found.record
        parents = repo.commit(parent).parents
    return None


def salvage(repo: Repo, corrupt: Corrupt) -> tuple[Record, str | None] | None:
    """The newest readable record an unreadable ref still leads to, and the commit to
    continue its history from: below a bad commit, behind a tag, inside a tree."""
    kind = repo.object_types([corrupt.oid])[0]
    if kind == "commit":
        record = last_readable(repo, corrupt.oid, corrupt.id)
        return (record, corrupt.oid) if record else None
    if kind == "tag":
        try:
            peeled = repo.peel_to_commit(corrupt.oid)
        except (WorkerError, KeyError):
            return None
        found = _load(repo, corrupt.id, peeled)
        record = (found.record if isinstance(found, Entry)
                  else last_readable(repo, peeled, corrupt.id))
        return (record, peeled) if record else None
    if kind == "tree":
        data = repo.read_blobs([f"{corrupt.oid}:{RECORD_FILE}"])[0]
        inside = parse(corrupt.id, corrupt.oid, data) if data is not None else None
        return (inside.record, None) if isinstance(inside, Entry) else None
    return None


def restore_last_readable(repo: Repo, corrupt: Corrupt) -> None:
    """Put the newest readable state back on top of an unreadable record (CAS)."""
    salvaged = salvage(repo, corrupt)
    if salvaged is None:
        raise WorkerError("no readable state in its history")
    record, parent = salvaged
    new = _write_commit(repo, record, parent, "fsck: restored last readable state")
    if not repo.update_ref(refnames.registry(corrupt.id), corrupt.oid, new, "git-worker: fsck"):
        raise WorkerError("the record changed meanwhile; run git worker fsck again")


def forget(repo: Repo, worker_id: str, oid: str, *,
           also: dict[str, str] | None = None) -> bool:
    """Delete the record (if still at ``oid``; ``also``: see remove) and the worker's
    runtime files."""
    removed = remove(repo, worker_id, oid, also=also)
    if removed:
        remove_runtime_dir(RuntimeDir.of(repo, worker_id).path)
    return removed


def owner_runtime(repo: Repo, worktree: str) -> str | None:
    """The runtime dir of the worker whose record names ``worktree``; None: no worker's."""
    want = os.path.realpath(worktree)
    for e in all_entries(repo):
        if isinstance(e, Entry) and os.path.realpath(e.record.worktree) == want:
            return RuntimeDir.of(repo, e.record.id).path
    return None
