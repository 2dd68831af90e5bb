"""git worker hooks install|uninstall."""

from __future__ import annotations

import sys

from git_worker import hooks, output
from git_worker.repo import Repo

_SAID = {
    "installed": "installed {name} in {dir}",
    "updated": "updated {name} in {dir}",
    "chained": "installed {name} in {dir}; your existing hook is kept as "
               "{name}" + hooks.CHAINED_SUFFIX + " and runs after it",
    "removed": "removed {name} from {dir}",
    "restored": "removed {name} from {dir} and restored your own hook",
    "absent": "{name} is not installed in {dir}",
}


def run(repo: Repo, *, action: str) -> int:
    changes = hooks.install(repo) if action == "install" else hooks.uninstall(repo)
    directory = hooks.repo_hooks_dir(repo)
    inside = (repo.common_dir, repo.main_worktree)
    if action == "install" and not any(directory.startswith(p.rstrip("/") + "/") for p in inside):
        print(f"note: core.hooksPath points outside this repository "
              f"({output.visible(directory)}); the hooks "
              "apply to every repository that uses it (they do nothing where there are no "
              "workers)", file=sys.stderr)
    for c in changes:
        directory = output.relpath(c.path.rsplit("/", 1)[0])
        if c.what == "foreign":
            print(f"warning: {output.visible(c.path)} is not git-worker's hook (replaced since "
                  "install?); "
                  "left it alone", file=sys.stderr)
            continue
        print(_SAID[c.what].format(name=c.name, dir=output.visible(directory)))
    return 0
