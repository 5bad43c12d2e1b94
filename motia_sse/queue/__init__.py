"""Event steps: the queue protocol, its in-process implementation, the worker."""
