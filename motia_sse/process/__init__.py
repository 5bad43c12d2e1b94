"""Processes: dev watcher, --workers supervisor, their children, in-place reload, scaffolding."""
