from git_worker.cli import run

run()
