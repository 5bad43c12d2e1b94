"""Checks of the production flags' values (origins, networks, token, root path, switches):
argparse types and actions that refuse a bad value in one line naming what is expected."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from motia_sse.http.cors import check_cors


def checked(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type of a parser whose ValueError says what is wrong: one line."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


class Origins(argparse.Action):
    """`--cors-origin`, repeatable; the flags given replace $MOTIA_CORS_ORIGIN's list."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        given = getattr(namespace, self.dest)
        setattr(namespace, self.dest, (*(() if given is self.default else given), *values))


def cors_flags(args: argparse.Namespace) -> tuple[tuple[str, ...], bool]:
    """The `--cors-origin` list and `--cors-credentials`, checked together."""
    try:
        check_cors(args.cors_origins, args.cors_credentials)
    except ValueError as exc:  # two flags that do not go together: one line, no usage
        raise SystemExit(f"motia-sse: {exc}") from None
    return args.cors_origins, args.cors_credentials


class Switch(argparse.Action):
    """A flag without a value, whose default may come from the environment as 1 or 0."""

    def __init__(self, option_strings: list[str], dest: str, default: Any = False,
                 help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, type=_switch,
                         help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, True)


def _switch(raw: str) -> bool:
    # argparse converts a string default (the environment's value) with this.
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(
        f"expected 1 or 0 (or true, false) from the environment, got {raw!r}")


# What a cookie value may hold unquoted (RFC 6265 cookie-octet): no space, '"', ',',
# ';' or '\'; printable ASCII, so a header carries it too.
_TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - set('",;\\')
MIN_TOKEN_LENGTH = 16


def workbench_token(raw: str) -> str:
    """`--workbench-token`: a cookie-safe token long enough not to be guessed."""
    bad = sorted({c for c in raw if c not in _TOKEN_CHARS})
    if bad:
        raise argparse.ArgumentTypeError(
            f"may not hold {', '.join(repr(c) for c in bad)}: use printable ASCII without "
            "spaces, quotes, commas, semicolons or backslashes")
    if len(raw) < MIN_TOKEN_LENGTH:
        raise argparse.ArgumentTypeError(
            f"expected at least {MIN_TOKEN_LENGTH} characters, got {len(raw)}; make one "
            "with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return raw
