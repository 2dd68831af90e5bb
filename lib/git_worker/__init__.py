"""git-worker: parallel coding agents, one per task, each in its own worktree and branch."""

__version__ = "0.1.0"
