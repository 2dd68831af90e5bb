"""The repository: refs with compare-and-swap (`git update-ref`), objects (dulwich).

This is the plumbing floor. dulwich's exceptions (FileLocked, KeyError, ValueError…)
become WorkerError here, so nothing above needs to know them.
"""

from __future__ import annotations

import itertools
import os
import time

from git_worker import git
from git_worker.errors import GitCommandError, WorkerError, from_os_error

# typing only for annotations (importing it costs ~5 ms on hot paths).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from dulwich.object_store import DiskObjectStore
    from dulwich.objects import Commit, ObjectID
    from dulwich.refs import DiskRefsContainer, Ref

# Registry commits and the reflog lines git-worker writes carry this identity, so they
# never fail for want of user.name/user.email and are easy to tell apart in `git log`.
IDENTITY = b"git-worker <git-worker@localhost>"
_NO_REF = ""  # as old value to git update-ref: the ref must not exist yet


def _reflog_line(message: str) -> str:
    """A reflog message as git keeps one: a single line. Events carry what agents said
    (any text, NUL included, which no argv can hold): control characters become spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in message).split())

_TMP_SEQ = itertools.count()  # temporary object files: unique within the process

# Every ref write: hooks off (the shipped reference-transaction hook guards against plain
# git, not against git-worker), and the ref fsynced before it is renamed into place — git
# by default does not (core.fsync=committed,-loose-object leaves references out), and the
# registry is what recovery relies on after a crash (see docs/reliability.md).
_HARDENED = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsync=reference")

_LOCK_RETRIES = 40  # x ~25 ms average back-off: about a second, like git's core.filesRefLockTimeout


def _ref(name: str) -> Ref:
    return name.encode("utf-8", "surrogateescape")  # type: ignore[return-value]  # NewType


def _oid(oid: str) -> ObjectID:
    return oid.encode("ascii")  # type: ignore[return-value]  # NewType


class Repo:
    # Plain classes, not dataclasses, for everything list and show touch: `import
    # dataclasses` (it imports inspect) and building the classes cost them ~15 ms.

    def __init__(self, git_dir: str, common_dir: str, main_worktree: str,
                 cwd_worktree: str | None) -> None:
        self.git_dir = git_dir  # this worktree's administrative directory
        self.common_dir = common_dir  # shared by every worktree: refs, objects, workers/
        self.main_worktree = main_worktree  # where the default worktreeDir is relative to
        self.cwd_worktree = cwd_worktree  # the worktree the user is in, if any
        self._packed: tuple[tuple[int, int, int], dict[str, str]] | None = None
        # ref_table()s begun before this Repo was known (start_ref_table), by their prefixes:
        # the first ref_table() of those prefixes takes its answer; later ones read again.
        self.started_ref_tables: dict[tuple[str, ...], git.Running] = {}
        self._refs: DiskRefsContainer | None = None  # opened when first asked for
        self._objects: DiskObjectStore | None = None

    @classmethod
    def discover(cls, cwd: str | None = None) -> Repo:
        return cls.discovered(cls.start_discover(cwd), cwd)

    @staticmethod
    def start_discover(cwd: str | None = None) -> git.Running:
        """discover(), begun: git looks for the repository while the caller does something
        else; discovered() then waits for it."""
        # `git rev-parse` rather than dulwich's Repo.discover(): it honours GIT_DIR,
        # GIT_WORK_TREE and friends the way the user's git does, which dulwich 1.2.21 doesn't.
        return git.start(["rev-parse", "--path-format=absolute", "--git-dir",
                          "--git-common-dir", "--is-bare-repository", "--show-toplevel"],
                         cwd=cwd)

    @classmethod
    def discovered(cls, discovering: git.Running, cwd: str | None = None) -> Repo:
        """The repository start_discover() looked for from ``cwd``."""
        try:
            out = discovering.output().decode(errors="surrogateescape").rstrip("\n")
        except GitCommandError as e:
            if "--show-toplevel" in e.stderr or "must be run in a work tree" in e.stderr:
                out = git.output(
                    ["rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir",
                     "--is-bare-repository"],
                    cwd=cwd,
                )
            elif "not a git repository" in e.stderr:
                raise WorkerError(
                    "not a git repository (or any of its parents)",
                    hint="run git worker inside the repository whose tasks the workers take",
                ) from None
            else:
                raise
        lines = out.split("\n")
        git_dir, common_dir, bare = lines[0], lines[1], lines[2] == "true"
        toplevel = lines[3] if len(lines) > 3 else None
        main = common_dir if bare else os.path.dirname(common_dir)
        return cls(git_dir, common_dir, main, toplevel)

    # dulwich's ref and object stores, opened directly: dulwich.repo.Repo would import
    # index, config, hooks and more (tens of ms) that git-worker never uses. (Cached by
    # hand, not functools.cached_property: importing functools costs every command ~1 ms.)

    @property
    def refs(self) -> DiskRefsContainer:
        if self._refs is None:
            from dulwich.refs import DiskRefsContainer

            self._refs = DiskRefsContainer(self.common_dir, logger=self._write_reflog)
        return self._refs

    @property
    def objects(self) -> DiskObjectStore:
        if self._objects is None:
            from dulwich.object_store import DiskObjectStore

            self._objects = DiskObjectStore(os.path.join(self.common_dir, "objects"))
        return self._objects

    def _write_reflog(self, ref: bytes, old: bytes, new: bytes, committer: bytes | None,
                      timestamp: int | None, timezone: int | None, message: bytes) -> None:
        append_reflog(os.path.join(self.common_dir, "logs", os.fsdecode(ref)),
                      old.decode(), new.decode(), message.decode())

    # --- refs ---------------------------------------------------------------------------

    def read_ref(self, name: str) -> str | None:
        """The OID ``name`` points to (following symrefs), or None when it doesn't exist.

        Read from the files as dulwich's DiskRefsContainer reads them — the loose file,
        else `packed-refs` (git writes packed-refs before it deletes a loose ref it packs:
        this order never misses one) — without importing it: ~6 ms of every spawn and rm.
        """
        for _ in range(_SYMREF_DEPTH):
            content = _read_loose(self.common_dir, name)
            if content is None:
                return self._packed_refs().get(name)
            if not content.startswith(b"ref: "):
                return content[:40].decode(errors="surrogateescape")
            name = content[5:].strip().decode(errors="surrogateescape")
        return None

    def _packed_refs(self) -> dict[str, str]:
        """packed-refs as name -> OID, parsed again only when the file changed (list and
        fsck read a ref of each of a thousand workers: a parse each was quadratic)."""
        path = os.path.join(self.common_dir, "packed-refs")
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                key = (st.st_ino, st.st_size, st.st_mtime_ns)
                if self._packed is not None and self._packed[0] == key:
                    return self._packed[1]
                data = f.read()
        except FileNotFoundError:
            return {}
        refs = {}
        for line in data.splitlines():
            if line.startswith((b"#", b"^")):
                continue
            oid, _, name = line.partition(b" ")
            refs[name.decode(errors="surrogateescape")] = oid.decode(errors="surrogateescape")
        self._packed = (key, refs)
        return refs

    def symref_target(self, name: str) -> str | None:
        """The ref ``name`` is a symbolic ref to (refs/heads/…), or None. Symbolic refs are
        always loose files."""
        content = _read_loose(self.common_dir, name)
        if content is None or not content.startswith(b"ref: "):
            return None
        return content[5:].strip().decode(errors="surrogateescape")

    def refs_under(self, prefix: str) -> dict[str, str]:
        """Every ref below ``prefix`` (e.g. 'refs/workers/') → OID, keyed by the rest."""
        found = self.refs.as_dict(_ref(prefix.rstrip("/")))
        return {k.decode(): v.decode() for k, v in found.items()}

    def create_ref(self, name: str, oid: str, message: str) -> bool:
        """Create ``name`` at ``oid`` unless it exists (atomic). False when it existed."""
        return self._swap_refs([(name, _NO_REF, oid)], message)

    def create_refs(self, refs: dict[str, str], message: str) -> bool:
        """Create every ref of ``refs`` (name -> OID) in one transaction, or none of them:
        False when one existed already (then nothing was created)."""
        return self._swap_refs([(name, _NO_REF, oid) for name, oid in refs.items()], message)

    def update_ref(self, name: str, old: str, new: str, message: str) -> bool:
        """Move ``name`` from ``old`` to ``new`` (atomic). False when it wasn't at ``old``."""
        return self._swap_refs([(name, old, new)], message)

    def _swap_refs(self, swaps: list[tuple[str, str, str]], message: str) -> bool:
        """Move each ref (name, old, new) from ``old`` (_NO_REF: it must not exist) to
        ``new``, all or none, with `git update-ref` (several: one `--stdin` transaction),
        not dulwich: 1.2.21's set_if_equals, racing `git pack-refs`, returned True and
        left the ref gone (measured with a create → update → check loop against a
        pack-refs loop, as tests/test_races.py::
        test_spawn_rm_and_updates_racing_git_pack_refs does). git waits for its locks;
        whether the swap lost is read back through git. Hooks off, as for delete_ref."""
        if len(swaps) == 1:
            name, old, new = swaps[0]
            argv, stdin = [name, new, old], None
        else:  # ref names hold no spaces or newlines (git's rules for them)
            argv = ["--stdin"]
            stdin = "".join(f"create {name} {new}\n" if old == _NO_REF
                            else f"update {name} {new} {old}\n"
                            for name, old, new in swaps).encode()
        for attempt in range(_LOCK_RETRIES):
            proc = git.run([*_HARDENED, "update-ref", "--create-reflog",
                            "-m", _reflog_line(message), *argv], cwd=self.common_dir,
                           env=git.clean_env({"GIT_COMMITTER_NAME": "git-worker",
                                              "GIT_COMMITTER_EMAIL": "git-worker@localhost"}),
                           check=False, input=stdin)
            if proc.returncode == 0:
                return True
            now = self.ref_table(*(name for name, _, _ in swaps))
            if any(now.get(name) != (None if old == _NO_REF else old) for name, old, _ in swaps):
                return False  # one moved (or is there already): the compare-and-swap lost
            _back_off(attempt)
        detail = proc.stderr.decode(errors="replace").strip()
        import re  # only on this failure

        named = re.search(r"'([^']+\.lock)': File exists", detail)
        if named:
            raise _locked(swaps[0][0], os.path.normpath(named.group(1)))
        raise WorkerError(f"cannot update {', '.join(name for name, _, _ in swaps)}: {detail}")

    def delete_ref(self, name: str, old: str, message: str) -> bool:
        """Delete ``name`` if it is still at ``old`` (atomic), with its reflog: delete_refs
        of one ref."""
        return self.delete_refs({name: old}, message)

    def delete_refs(self, refs: dict[str, str], message: str) -> bool:
        """Delete every ref of ``refs`` (name -> the OID it must still be at), with their
        reflogs, in one `git update-ref --stdin` transaction: all or none. False when one
        of them had moved (or gone): then none was deleted.

        Through git, not dulwich: 1.2.21's remove_if_equals deletes the loose file *before*
        it takes packed-refs.lock, so when `git pack-refs` (or gc) holds that lock it raises
        FileLocked with the loose ref already gone — the ref then reads as packed-refs'
        older value, or as missing (measured by tests/test_races.py::
        test_spawn_rm_and_updates_racing_git_pack_refs). git removes the packed entry
        first, waits for its locks, and deletes the reflog with the ref. Hooks are off for
        it, as for every update: the shipped reference-transaction hook guards against
        plain git, not against git-worker."""
        # ref names hold no spaces or newlines (git's rules for them)
        stdin = "".join(f"delete {name} {old}\n" for name, old in refs.items()).encode()
        for attempt in range(_LOCK_RETRIES):
            proc = git.run([*_HARDENED, "update-ref", "-m", _reflog_line(message), "--stdin"],
                           cwd=self.common_dir, env=git.clean_env(), check=False, input=stdin)
            if proc.returncode == 0:
                for name in refs:
                    _remove_empty_tail(os.path.join(self.common_dir, "logs", name),
                                       self.common_dir)
                return True
            now = self.ref_table(*refs)
            if any(now.get(name) != old for name, old in refs.items()):
                return False  # one moved (or went): the compare-and-swap lost
            _back_off(attempt)
        detail = proc.stderr.decode(errors="replace").strip()
        import re  # only on this failure

        named = re.search(r"'([^']+\.lock)'", detail)
        if named:
            raise _locked(next(iter(refs)), os.path.normpath(named.group(1)))
        raise WorkerError(f"cannot delete {', '.join(refs)}: {detail}")

    # --- bulk reads through git (the hot path of list/show) ------------------------------
    # `import dulwich.repo` alone costs 50-80 ms, half of list's 150 ms budget; one
    # `git for-each-ref` and one `git cat-file --batch` read 100 records in ~10 ms.

    @staticmethod
    def start_ref_table(*prefixes: str) -> git.Running:
        """ref_table(), begun before the repository is known, in the one git finds from the
        current directory (as start_discover's): hand it to the Repo it finds
        (started_ref_tables)."""
        return git.start(_ref_table_argv(prefixes))

    def ref_table(self, *prefixes: str) -> dict[str, str]:
        """refname → OID for every ref under ``prefixes`` ("" for a broken ref)."""
        started = self.started_ref_tables.pop(prefixes, None)
        proc = (git.run(_ref_table_argv(prefixes), cwd=self.common_dir) if started is None
                else started.completed())
        table = {}
        for line in proc.stdout.decode(errors="surrogateescape").splitlines():
            oid, name = line.split(" ", 1)
            table[name] = oid
        # for-each-ref skips a ref with an invalid OID, with only a warning: keep it, so
        # that callers report it instead of silently losing sight of it.
        for line in proc.stderr.decode(errors="surrogateescape").splitlines():
            if line.startswith("warning: ignoring broken ref "):
                table[line[len("warning: ignoring broken ref ") :]] = ""
        return table

    def upstreams(self) -> dict[str, str]:
        """Each local branch that has an upstream → that upstream (refs/remotes/…)."""
        out = git.output(["for-each-ref", "--format=%(refname)%00%(upstream)", "refs/heads/"],
                         cwd=self.common_dir, env=git.clean_env())
        pairs = (line.partition("\0") for line in out.splitlines())
        return {local: upstream for local, _, upstream in pairs if upstream}

    def add_detached_worktree(self, path: str, commit: str) -> None:
        """`git worktree add --detach`: a checkout of ``commit`` on no branch."""
        git.run(["worktree", "add", "--detach", "--quiet", path, commit],
                cwd=self.common_dir, env=git.clean_env())

    def object_types(self, oids: Sequence[str]) -> list[str]:
        """'commit', 'blob', … or 'missing' for each OID (git cat-file --batch-check)."""
        out = git.output(["cat-file", "--batch-check=%(objecttype)"], cwd=self.common_dir,
                         input="".join(f"{o or '0' * 40}\n" for o in oids).encode())
        return [line.rsplit(" ", 1)[-1] for line in out.splitlines()]

    def read_objects(self, specs: Sequence[str], *,
                     alone: bool = False) -> list[tuple[str, bytes] | None]:
        """(type, contents) of each object spec ('<oid>', '<commit>:worker.json'), or None
        where there is no such object — all in one `git cat-file --batch`. ``alone``: read
        this repository whatever GIT_DIR and friends say (leases.py reads other ones)."""
        if not specs:
            return []
        # --buffer: one write per pipeful, not a flush per object (1,000 records: ~650
        # reads of the pipe less, 4-17 ms, measured); all input is written before reading.
        batch = ["cat-file", "--batch", "--buffer"]
        argv = ["--git-dir", self.common_dir, *batch] if alone else batch
        data = git.run(argv, cwd=self.common_dir, env=git.clean_env() if alone else None,
                       input="".join(f"{s}\n" for s in specs).encode()).stdout
        found: list[tuple[str, bytes] | None] = []
        pos = 0
        for _ in specs:
            end = data.index(b"\n", pos)
            header = data[pos:end].split()
            pos = end + 1
            if len(header) != 3:  # "<spec> missing" (or ambiguous)
                found.append(None)
                continue
            size = int(header[2])
            found.append((header[1].decode(), data[pos : pos + size]))
            pos += size + 1
        return found

    def read_blobs(self, specs: Sequence[str]) -> list[bytes | None]:
        """The contents of each spec that names a blob; None for anything else."""
        return [o[1] if o and o[0] == "blob" else None for o in self.read_objects(specs)]

    def count_commits(self, include: str, *exclude: str) -> int:
        """Commits reachable from ``include`` and from none of ``exclude`` (git rev-list)."""
        if include in exclude:
            return 0
        out = git.output(["rev-list", "--count", include, *(f"^{e}" for e in exclude), "--"],
                         cwd=self.common_dir)
        return int(out)

    def commit_named(self, name: str) -> str | None:
        """The commit a name that is no ref names (an OID, abbreviated or not, or any
        revision git understands: HEAD~2, v1.0^{}); None when it names no commit."""
        if name.startswith("-"):
            return None  # never an option to rev-parse
        proc = git.run(["rev-parse", "--verify", "--quiet", "--end-of-options",
                        f"{name}^{{commit}}"], cwd=self.common_dir, check=False)
        oid = proc.stdout.decode(errors="replace").strip()
        return oid if proc.returncode == 0 and oid else None

    def commit_graph(self, include: Sequence[str], exclude: str) -> dict[str, list[str]]:
        """Every commit reachable from ``include`` and not from ``exclude``, with its
        parents: one `git rev-list --parents` for what would be one rev-list per worker."""
        out = git.output(["rev-list", "--parents", *dict.fromkeys(include), f"^{exclude}", "--"],
                         cwd=self.common_dir)
        graph = {}
        for line in out.splitlines():
            oid, *parents = line.split()
            graph[oid] = parents
        return graph

    def log_oneline(self, include: str, *exclude: str, limit: int = 20) -> list[str]:
        """'<short oid> <subject>' of the commits ``count_commits`` counts, newest first."""
        if include in exclude:
            return []
        out = git.output(["log", f"--max-count={limit}", "--format=%h %s", include,
                          *(f"^{e}" for e in exclude), "--"], cwd=self.common_dir)
        return out.splitlines()

    # --- objects ------------------------------------------------------------------------

    def write_object(self, kind: str, content: bytes) -> str:
        """Store one object (its git type, its content) as a loose file, the way git does,
        tolerating another process writing the very same one; its OID.

        Not through dulwich: importing its object store costs every command that writes a
        record ~15 ms, its object classes ~9 ms (measured), for a job of a few lines. The
        object is written to a temporary file beside its place, then linked into place (an
        object that is there already, written by anyone, has the same bytes: the link
        fails and that is fine); one that exists is freshened instead, so that a
        concurrent `git gc` does not prune it as old before a ref names it. Like dulwich
        and git by default (core.fsyncObjectFiles is off), object files are not fsynced:
        see README.
        """
        import zlib

        raw = f"{kind} {len(content)}\0".encode() + content
        oid = _sha1(raw)
        directory = os.path.join(self.common_dir, "objects", oid[:2])
        path = os.path.join(directory, oid[2:])
        try:
            os.utime(path)
            return oid
        except FileNotFoundError:
            pass
        except PermissionError:
            pass  # another user's (a shared repository): write our own copy below
        try:
            os.makedirs(directory, exist_ok=True)
            tmp = os.path.join(directory, f"tmp_obj_{os.getpid()}_{next(_TMP_SEQ)}")
            if os.path.lexists(tmp):
                os.unlink(tmp)  # left by a killed process whose pid was ours
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(zlib.compress(raw))
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    pass  # written meanwhile by another process: the same bytes
                except OSError:
                    os.replace(tmp, path)  # no hard links here (git falls back so too)
            finally:
                if os.path.lexists(tmp):
                    os.unlink(tmp)
        except OSError as e:
            world = from_os_error(e)
            raise (world or WorkerError(f"cannot write object {oid}: {e}")) from e
        return oid

    def commit(self, oid: str) -> Commit:
        from dulwich.objects import Commit

        try:
            obj = self.objects[_oid(oid)]
        except KeyError:
            raise WorkerError(f"object {oid} is missing from the repository") from None
        if not isinstance(obj, Commit):
            raise WorkerError(f"{oid} is a {obj.type_name.decode()}, not a commit")
        return obj

    def tree_of(self, commit: str) -> str:
        """The OID of ``commit``'s tree."""
        return str(self.commit(commit).tree.decode())

    def peel_to_commit(self, oid: str) -> str:
        """The commit ``oid`` is, or the annotated tag(s) at ``oid`` point to.

        A loose commit is known by its file's first bytes (a branch tip, until git packs
        it); else one `git rev-parse` rather than dulwich's object store, whose import
        alone costs spawn ~15 ms (measured)."""
        if self._loose_type(oid) == "commit":
            return oid  # no process: ~3 ms of every spawn before its checkout
        found = self.commit_named(oid)
        if found is None:
            kind = self.object_types([oid])[0]
            if kind == "missing":
                raise WorkerError(f"object {oid} is missing from the repository")
            raise WorkerError(f"{oid} is a {kind}, not a commit (nor a tag of one)")
        return found


    def read_loose_object(self, oid: str) -> tuple[str, bytes] | None:
        """(type, content) of the object ``oid`` when it is a loose file exactly as
        write_object writes one (and git does); None for anything else — not loose (packed
        by `git gc`), unreadable, not zlib, a bad header or size, content that does not
        hash to ``oid`` — so the caller asks git, which reads packs and reports damage.

        For a command that reads a record or two by OID (rm): a `git cat-file` costs a
        process, ~4 ms; dulwich's object store its import, ~15 ms (measured)."""
        import zlib

        if len(oid) != 40:
            return None
        try:
            raw = zlib.decompress(read_file(os.path.join(self.common_dir, "objects", oid[:2],
                                                         oid[2:])))
        except (OSError, zlib.error):
            return None
        head, nul, content = raw.partition(b"\0")
        kind, _, size = head.partition(b" ")
        if (not nul or kind not in (b"blob", b"tree", b"commit", b"tag")
                or size != str(len(content)).encode() or _sha1(raw) != oid):
            return None
        return kind.decode(), content

    def _loose_type(self, oid: str) -> str | None:
        """The type of the object ``oid`` when it is a loose one (None: not loose, or its
        file unreadable), from its header as git reads it."""
        import zlib

        if len(oid) != 40:
            return None
        try:
            with open(os.path.join(self.common_dir, "objects", oid[:2], oid[2:]), "rb") as f:
                head = zlib.decompressobj().decompress(f.read(64), 32)
        except (OSError, zlib.error):
            return None
        kind, space, _ = head.partition(b" ")
        return kind.decode("ascii", "replace") if space else None


# --- configuration files, read and written by git (dulwich rewrites includes, drops comments)


def _ref_table_argv(prefixes: Sequence[str]) -> list[str]:
    # Only names and OIDs: asking for %(objecttype) makes git die on a missing object.
    return ["for-each-ref", "--format=%(objectname) %(refname)", *prefixes]


# list and fsck read five small files of every worktree, rm three loose objects of every
# record: os.open and os.read take ~1 us a file where open() in text mode takes ~17 us
# (measured), 80 ms for 1,000 workers.
_CHUNK = 65536


def read_file(path: str, *, follow: bool = True, until: bytes | None = None) -> bytes:
    """The bytes of the file at ``path`` (OSError as open() raises it); ``until``: stop
    once one of its bytes was read (the file may be anything its worktree's agent wrote)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
    try:
        chunks = []
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
            # A short read is a regular file's end (no second read() to be told so); from
            # anything else an agent put there, what it gave first (naming no worktree).
            if len(chunk) < _CHUNK or (until is not None and any(u in chunk for u in until)):
                break
    finally:
        os.close(fd)
    return b"".join(chunks)


def _sha1(data: bytes) -> str:
    """The SHA-1 of ``data`` (hex), git's object name. CPython's own SHA-1 where it has one:
    hashlib would load OpenSSL first, ~3 ms of every spawn before its checkout (measured)."""
    try:
        from _sha1 import sha1  # type: ignore[import-not-found]  # no stub: a private module
    except ImportError:  # a Python built without it (hashlib then uses OpenSSL's)
        from hashlib import sha1
    digest: str = sha1(data).hexdigest()
    return digest


def config_file_get(path: str, key: str) -> str | None:
    """``key`` as one configuration file (not the scopes around it) sets it, or None."""
    proc = git.run(["config", "--file", path, "--get", key], check=False, env=git.clean_env())
    return proc.stdout.decode(errors="surrogateescape").strip() if proc.returncode == 0 \
        else None


def config_file_set(path: str, key: str, value: str) -> None:
    git.run(["config", "--file", path, key, value], env=git.clean_env())


def config_file_unset(path: str, key: str) -> None:
    """Take ``key`` out of the file (nothing happens if it is not there)."""
    git.run(["config", "--file", path, "--unset-all", key], check=False, env=git.clean_env())


def excludes_file(worktree: str) -> str | None:
    """core.excludesFile as git reads it in ``worktree`` (a path, ~ expanded), or None."""
    proc = git.run(["config", "--path", "--get", "core.excludesFile"], check=False,
                   cwd=worktree, env=git.clean_env())
    return proc.stdout.decode(errors="surrogateescape").strip() or None \
        if proc.returncode == 0 else None


def append_reflog(path: str, old: str, new: str, message: str) -> None:
    """One reflog line, in git's format, by git-worker's identity."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    line = (f"{old} {new} {IDENTITY.decode()} {int(time.time())} +0000\t"
            f"{message.splitlines()[0] if message else ''}\n")
    with open(path, "a", encoding="utf-8", errors="surrogateescape") as f:
        f.write(line)


_SYMREF_DEPTH = 5  # as dulwich and git follow them


def _read_loose(common_dir: str, name: str) -> bytes | None:
    """The content of the loose ref file ``name``, or None when there is no such file.
    (os.read: list reads a ref of every worker, and a file object costs ~15 us a ref.)"""
    try:
        fd = os.open(os.path.join(common_dir, name), os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return os.read(fd, 4096)
    except IsADirectoryError:  # refs/workers/a when refs/workers/a/b exists
        return None
    finally:
        os.close(fd)


def _back_off(attempt: int) -> None:
    """Wait a little, randomly, before retrying a ref another process has locked."""
    import random  # only under contention: list never needs it

    time.sleep(random.uniform(0.005, 0.01 * (1 + min(attempt, 4))))


def _locked(name: str, lock: str) -> WorkerError:
    """The error for a ref whose lock file stays: it names the file and the way out."""
    return WorkerError(
        f"cannot update {name}: its lock file {lock} is held by another process, or was "
        "left behind by one that was killed",
        hint="if no git command is running, git worker fsck --repair deletes it once it is "
             f"a minute old (or delete it yourself: rm {lock})",
    )


def _remove_empty_tail(path: str, stop: str) -> None:
    """Remove ``path`` and then its parents while they are empty, up to ``stop``."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    parent = os.path.dirname(path)
    while parent.startswith(stop + os.sep) and parent != stop:
        try:
            os.rmdir(parent)
        except OSError:
            return
        parent = os.path.dirname(parent)
