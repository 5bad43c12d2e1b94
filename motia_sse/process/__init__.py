"""Processes: the dev watcher, in-place reload, the --workers supervisor, scaffolding."""
