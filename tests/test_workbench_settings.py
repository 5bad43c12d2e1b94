"""`/__motia/steps`: each event and cron step's queue settings in effect, its own marked."""

from __future__ import annotations

from typing import Any

import attrs

from motia_sse import Settings
from tests.conftest import ClientFactory, WriteSteps

# An event step that sets three of its queue settings, and a cron step that sets none.
FILES = {
    "careful_step.py": '''
from typing import Any
from motia_sse import EventConfig, FlowContext

config = EventConfig(name="Careful", subscribes=["parcel"], max_attempts=2, concurrency=1,
                     timeout=0.5)

async def handler(input: Any, ctx: FlowContext) -> None:
    pass
''',
    "sweep_step.py": '''
from motia_sse import CronConfig, FlowContext

config = CronConfig(name="Sweep", cron="0 3 * * *")

async def handler(ctx: FlowContext) -> None:
    pass
''',
}


async def described(make_client: ClientFactory, settings: Settings) -> dict[str, Any]:
    """The settings `/__motia/steps` gives each step that has them, by step name."""
    client = await make_client(settings)
    response = await client.get("/__motia/steps")
    assert response.status == 200
    return {s["name"]: s.get("settings") for s in await response.json()}


async def test_steps_show_their_own_settings_and_the_flags_defaults(
    write_steps: WriteSteps, make_client: ClientFactory, settings: Settings
) -> None:
    """The step's own values win; the rest are the flags', a cron step's attempts 1."""
    flags = attrs.evolve(settings, steps_dir=write_steps(FILES), max_attempts=4,
                         retry_backoff=0.25, handler_timeout=30.0)
    assert await described(make_client, flags) == {
        "Careful": {"max_attempts": 2, "backoff": 0.25, "timeout": 0.5, "concurrency": 1,
                    "own": ["max_attempts", "timeout", "concurrency"]},
        "Sweep": {"max_attempts": 1, "backoff": 0.25, "timeout": 30.0, "concurrency": None,
                  "own": []},
    }


async def test_without_flags_the_servers_defaults_show(
    write_steps: WriteSteps, make_client: ClientFactory, settings: Settings
) -> None:
    """With no flags (in `dev`): 3 attempts for events, 0.5 s back-off, no timeout."""
    plain = attrs.evolve(settings, steps_dir=write_steps(FILES), dev=True, workbench=False)
    got = await described(make_client, plain)
    assert got["Careful"] == {"max_attempts": 2, "backoff": 0.5, "timeout": 0.5,
                              "concurrency": 1, "own": ["max_attempts", "timeout", "concurrency"]}
    assert got["Sweep"] == {"max_attempts": 1, "backoff": 0.5, "timeout": None,
                            "concurrency": None, "own": []}
