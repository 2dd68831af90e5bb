"""Commands run on another host (worker.host.<name>.*) over ssh: spawn --on, and logs,
stop, rm, attach (ssh -t) and diff of a worker that host owns."""

from __future__ import annotations

from git_worker import hosts, team
from git_worker.config import Config
from git_worker.repo import Repo


def spawn_on(repo: Repo, config: Config, name: str, args: list[str], *,
             base: str | None) -> int:
    """`git worker spawn ARGS` in the clone on host ``name``; its exit status. With
    worker.remote, the base (``base``: --from) must be published there: the host starts
    from the team remote's copy (checked here, before anything is created there)."""
    host = hosts.get(config, name)
    published = team.published_base(repo, config, base)
    start = published or base
    with hosts.session(config) as ssh:
        return ssh.run(host, ["spawn", *args, *([f"--from={start}"] if start else [])]
                       ).returncode


def forward(repo: Repo, config: Config, ids: list[str], args: list[str], *,
            tty: bool = False) -> int | None:
    """Run ``args`` on the host that owns the workers ``ids`` when that host is configured
    (worker.host.<name>.*); None when they are not another configured host's."""
    configured = hosts.configured(config)
    if not configured:
        return None
    owners = {team.foreign_host(repo, i) for i in ids}
    if len(owners) != 1 or None in owners:
        return None  # ours, unknown, or several hosts': handled (and refused) here
    name = str(owners.pop())
    if name not in configured:
        return None  # read-only here, as store.get says
    with hosts.session(config) as ssh:
        return ssh.run(configured[name], args, tty=tty).returncode
