"""Logs: structured output, the step logger, the workbench's buffer of recent records."""
