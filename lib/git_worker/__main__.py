from git_worker.cli import main

raise SystemExit(main())
