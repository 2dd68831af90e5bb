"""The registry, in three parts:

- record.py: worker.json (the record, its closed set of states, what an unreadable one says);
- store.py: refs/workers/<id>, one commit per state change, every write a compare-and-swap;
- runtime.py: <git-common-dir>/workers/<id>/, the files of a worker's current run, by name.
"""
