"""The worker.json of record commits read before, by commit OID: `list` (and `watch`)
ask git only for the records that changed since, and `rm` reads the other workers'
records from here.

Exact, not a guess: a commit never changes, so the worker.json a commit held when git
read it is the one it holds now; a record that changes is a new commit, which is read.
With 1,000 workers, `git cat-file` read 3,000 loose objects for every list (~100 ms,
measured); with this file, a list reads none until a record changes. rm needs the other
records only to know whether one names its branch or worktree (with 60 workers, 180 loose
objects: ~5 ms of every rm, measured). It is kept in <git-common-dir>/workers/.records
(runtime.RECORD_CACHE, private like every runtime file), holds the records of the refs
last listed (or last seen by an rm) and nothing else, and is only ever an optimisation:
unreadable, odd or unwritable, it is ignored (and rewritten when it can be). fsck and
show read git's objects, and so does every command for the record it changes: rm reads
its own from git (store.read_tables' ``fresh``), never from here.
"""

from __future__ import annotations

import os

from git_worker.registry.runtime import (
    RECORD_CACHE,
    not_a_directory,
    runtime_root,
    write_atomically,
)

# typing only for annotations.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from git_worker.repo import Repo

# Then, per record: "<commit oid> <size>\n" <size bytes of its worker.json> "\n".
_HEADER = b"git-worker record cache 1\n"


class RecordCache:
    def __init__(self, path: str) -> None:
        self.path = path
        self._known = _load(path)
        self._added = False

    @classmethod
    def of(cls, repo: Repo) -> RecordCache:
        return cls(os.path.join(runtime_root(repo), RECORD_CACHE))

    def get(self, oid: str) -> bytes | None:
        """The worker.json commit ``oid`` holds, if it was read before."""
        return self._known.get(oid)

    def put(self, oid: str, data: bytes) -> None:
        """What git said commit ``oid``'s worker.json holds."""
        if self._known.get(oid) != data:
            self._known[oid] = data
            self._added = True

    def save(self, oids: Iterable[str]) -> None:
        """Keep the records of ``oids`` (the commits just listed) and forget the others, if
        that changes the file. Best effort: never an error."""
        keep = {oid: self._known[oid] for oid in oids if oid in self._known}
        if not self._added and len(keep) == len(self._known):
            return
        root = os.path.dirname(self.path)
        if not os.path.isdir(root) or not_a_directory(root) is not None:
            return  # no worker ran here yet, or a runtime dir git-worker does not follow
        if not keep:  # no record left (rm of the last worker): no file left either
            try:
                os.remove(self.path)
            except OSError:
                pass
            self._known, self._added = keep, False
            return
        parts = [_HEADER]
        for oid, data in keep.items():
            parts += [f"{oid} {len(data)}\n".encode(), data, b"\n"]
        try:
            write_atomically(self.path, b"".join(parts))
        except OSError:
            pass  # read-only, full, someone else's: the next list reads git again
        self._known, self._added = keep, False


def _load(path: str) -> dict[str, bytes]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return {}
    if not data.startswith(_HEADER):
        return {}  # another version's, or not ours: start again
    known = {}
    pos, end = len(_HEADER), len(data)
    try:
        while pos < end:
            eol = data.index(b"\n", pos)
            oid, size = data[pos:eol].split(b" ")
            if not size.isdigit():
                return {}
            start = eol + 1
            stop = start + int(size)
            if data[stop:stop + 1] != b"\n":
                return {}  # cut short (a full disk), or not ours
            known[oid.decode("ascii")] = data[start:stop]
            pos = stop + 1
    except ValueError:  # no size, not a number, not ASCII: not ours
        return {}
    return known
