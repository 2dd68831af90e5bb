"""One module per command: a command parses, calls the domain, and prints; domain modules
never print.

cli.py parses the command line and calls ``run`` here with plain keyword arguments; the
modules below (git_worker.*) return values or raise WorkerError, and only these modules,
cli.py and output.py write to the terminal (tests/test_architecture.py lists the few
processes whose output is their job: the runner, the agents' hooks…)."""
