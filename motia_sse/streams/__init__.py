"""Stream items: the ctx API, the store protocol and its stores, the fan-out hub."""
