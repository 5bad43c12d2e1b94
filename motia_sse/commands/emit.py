"""`motia-sse emit TOPIC JSON`: queue an event on a running server, as the workbench's
Emit form does (`POST /__motia/emit`), and print its trace id."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from motia_sse.http.workbench_actions import EMIT_PATH
from motia_sse.settings import Settings

# Long enough for a busy dev server, short enough that a wedged one does not hang a script.
TIMEOUT = 30.0


def add_emit_parser(commands: Any, env: Mapping[str, str]) -> None:
    """Register `emit` on the `motia-sse` subcommands."""
    emit = commands.add_parser(
        "emit", help="queue an event on a running server (dev, or start --workbench)",
        description="Send DATA to the steps subscribed to TOPIC on a running server, "
                    "as if a step had emitted it; print the new trace id.")
    emit.add_argument("topic")
    emit.add_argument("data", type=_json, help="the event's data as JSON, e.g. '{\"n\": 1}'")
    emit.add_argument("--url", default=env.get("MOTIA_URL", f"http://localhost:{Settings().port}"),
                      help="the server (default http://localhost:3000; $MOTIA_URL)")
    emit.add_argument("--workbench-token", default=env.get("MOTIA_WORKBENCH_TOKEN"),
                      help="the server's --workbench-token, if it has one "
                           "($MOTIA_WORKBENCH_TOKEN)")
    emit.add_argument("--message-group-id",
                      help="handle it in order with the other events of this group")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


def send_emit(args: argparse.Namespace) -> int:
    """POST the event; the trace id on stdout, or one line on stderr and 1."""
    url = args.url.rstrip("/") + EMIT_PATH
    body = {"topic": args.topic, "data": args.data, "message_group_id": args.message_group_id}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if args.workbench_token:
        headers["Authorization"] = f"Bearer {args.workbench_token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return _fail(f"{url} answered {exc.code}: {_refusal(exc)}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return _fail(f"cannot reach {args.url} ({reason}); is `motia-sse dev` running there?")
    print(answer["traceId"])
    print(f"emitted {args.topic!r} to {', '.join(answer['steps'])}", file=sys.stderr)
    return 0


def _refusal(exc: urllib.error.HTTPError) -> str:
    """The server's `{"error", "details"}` on one line, or its status text."""
    try:
        body = json.loads(exc.read())
        return "; ".join([body["error"], *map(str, body.get("details", []))])
    except (ValueError, KeyError, TypeError):
        hint = " (is it a motia-sse server with the workbench on?)" if exc.code == 404 else ""
        return f"{exc.reason}{hint}"


def _fail(message: str) -> int:
    print(f"motia-sse emit: {message}", file=sys.stderr)
    return 1
