"""Ref names git-worker owns or reads."""

from __future__ import annotations

REGISTRY = "refs/workers/"
HEADS = "refs/heads/"
REMOTES = "refs/remotes/"
TAGS = "refs/tags/"
# Every host's records as last fetched from the team's remote (worker.remote), read-only:
# refs/workers-remote/<remote>/<id>, as refs/remotes/<remote>/ holds its branches.
TEAM = "refs/workers-remote/"
# What rm reads first, in one `for-each-ref`: every record, the branches and bases they
# name, and the team's records' refs, whose records (read by list) rm keeps in list's
# record cache (cli starts it beside the repository's discovery: cli._EARLY_READS).
RM_REFS = (REGISTRY, HEADS, REMOTES, TEAM)


def valid(name: str) -> bool:
    """Whether git would accept ``name`` as a ref name (git check-ref-format)."""
    from dulwich.refs import check_ref_format

    try:
        return check_ref_format(name.encode("utf-8", "surrogateescape"))  # type: ignore[arg-type]
    except Exception:  # dulwich raises on some byte sequences instead of saying False
        return False


def registry(worker_id: str) -> str:
    return REGISTRY + worker_id


def team(remote: str, worker_id: str = "") -> str:
    return f"{TEAM}{remote}/{worker_id}"


def branch(prefix: str, worker_id: str) -> str:
    return HEADS + prefix + worker_id


def short(ref: str) -> str:
    for prefix in (HEADS, REMOTES, TAGS):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref
