"""Event queues: the protocol and its backends (in process, SQLite, Redis Streams)."""
