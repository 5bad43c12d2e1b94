"""The README's "Coming from Motia" samples: ours is served and called; Motia's is Python."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import pytest

from motia_sse import LoadErrors, Settings
from motia_sse.run.loader import load_project
from tests.conftest import ClientFactory, OpenFeed, WriteSteps

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
FILE_HEADER = re.compile(r"^# steps/(\S+\.py)$")


def section(title: str) -> str:
    """The README's text under `## title`, up to the next `## ` heading."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def blocks(title: str) -> list[str]:
    """The python code blocks of a README section."""
    return FENCE.findall(section(title))


def our_files(title: str) -> dict[str, str]:
    """{file name: source} of the blocks that open with `# steps/<file>.py`."""
    files = {}
    for block in blocks(title):
        first, _, _ = block.partition("\n")
        header = FILE_HEADER.match(first)
        if header:
            files[header.group(1)] = block
    return files


@pytest.fixture(name="todo_steps")
def _todo_steps(write_steps: WriteSteps) -> Path:
    """The README's stream and step, written as the README shows them."""
    files = our_files("Coming from Motia")
    assert set(files) == {"todos_stream.py", "create_todo_step.py"}
    return write_steps(files, "readme_steps")


async def test_our_sample_serves_the_route(todo_steps: Path, make_client: ClientFactory,
                                           settings: Settings, open_feed: OpenFeed) -> None:
    """The sample loads, and its route answers as the README says, item and feed alike."""
    project = load_project(todo_steps)
    assert ([s.name for s in project.api_steps], [s.config.name for s in project.streams]) \
        == (["CreateTodo"], ["todos"])
    assert [w.split("/")[-1] for w in project.warnings] == [
        "create_todo_step.py: step 'CreateTodo' emits 'todo-created', but no step subscribes"
        " to it"], "the topic's subscriber is another file, not shown"
    client = await make_client(attrs.evolve(settings, steps_dir=todo_steps))
    response = await client.post("/lists/home/todos", json={"title": "milk"})
    assert response.status == 201, await response.text()
    body = await response.json()
    trace_id = response.headers["x-trace-id"]
    assert body == {"title": "milk", "priority": 1, "id": trace_id, "__motia": {
        "type": "state-stream", "streamName": "todos", "groupId": "home", "id": trace_id}}
    feed = await open_feed(str(client.make_url(f"/streams/todos/home/{trace_id}")))
    assert (await feed.next()).json() == {"title": "milk", "priority": 1, "id": trace_id}


async def test_our_sample_is_strict_where_the_readme_says(
        todo_steps: Path, make_client: ClientFactory, settings: Settings) -> None:
    """A body that does not fit is a 400 naming the field; the handler never runs."""
    client = await make_client(attrs.evolve(settings, steps_dir=todo_steps))
    response = await client.post("/lists/home/todos", json={"priority": 2, "due": "now"})
    assert response.status == 400
    answer: dict[str, Any] = await response.json()
    assert answer["error"] == "invalid body"
    assert "required field missing @ $.title" in answer["details"]


def test_a_misspelt_config_field_stops_the_load(todo_steps: Path) -> None:
    """As the README says: `bodySchema=` is a load error naming the file, not ignored."""
    step = todo_steps / "create_todo_step.py"
    step.write_text(step.read_text().replace("body_schema=Todo", "bodySchema=Todo"))
    with pytest.raises(LoadErrors) as raised:
        load_project(todo_steps)
    assert "create_todo_step.py" in str(raised.value)
    assert "bodySchema" in str(raised.value)


def test_the_motia_sample_is_python_with_pydantic() -> None:
    """Motia's side compiles, and its config builds (pydantic is installed with openai)."""
    motia = [b for b in blocks("Coming from Motia") if b.startswith("# Motia: ")]
    assert len(motia) == 1
    namespace: dict[str, Any] = {}
    exec(compile(motia[0], "motia_sample.py", "exec"), namespace)
    assert namespace["config"]["bodySchema"]["required"] == ["title"]
