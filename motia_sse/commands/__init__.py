"""`motia-sse` commands that do not serve: each in its own module, registered in cli.py."""
