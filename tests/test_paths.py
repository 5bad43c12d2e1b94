"""Route paths: Motia's `/users/:id` is `/users/{id}` in routing, path_params, the workbench
and OpenAPI; a path that cannot be one is a load error naming its file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from motia_sse import Settings, create_app
from motia_sse.exceptions import LoadErrors
from motia_sse.run.loader import load_project
from tests.conftest import ClientFactory, WriteSteps

ECHO_STEP = '''
from motia_sse import ApiRouteConfig

config = ApiRouteConfig(name={name!r}, path={path!r}, method={method!r})

async def handler(req, ctx):
    return {{"status": 200, "body": {{"step": {name!r}, "params": req.path_params}}}}
'''


def echo_step(name: str, path: str, method: str = "GET") -> str:
    """Source of an API step that answers with its name and path parameters."""
    return ECHO_STEP.format(name=name, path=path, method=method)


@pytest.fixture(name="path_steps")
def _path_steps(write_steps: WriteSteps) -> Path:
    """Steps written with Motia's `:name` parameters, aiohttp's `{name}`, and a literal colon."""
    return write_steps({
        "user_step.py": echo_step("GetUser", "/users/:id"),
        "post_step.py": echo_step("GetPost", "/users/:user_id/posts/:post_id/", "DELETE"),
        "order_step.py": echo_step("GetOrder", "/orders/{order_id:[0-9]+}"),
        "generate_step.py": echo_step("Generate", "/v1/models:generate", "POST"),
    }, "path_steps")


@pytest.mark.parametrize("reloadable", [False, True], ids=["start", "dev-reloadable"])
async def test_colon_parameters_route_and_fill_path_params(
    path_steps: Path, make_client: ClientFactory, reloadable: bool
) -> None:
    """`/users/:id` serves `/users/7` with path_params {"id": "7"}, in both routers."""
    settings = Settings(steps_dir=path_steps, store="memory", dev=reloadable)
    client = await make_client(settings, create_app(settings, reloadable=reloadable))

    async def get(method: str, url: str) -> tuple[int, Any]:
        response = await client.request(method, url)
        return response.status, await response.json()

    assert await get("GET", "/users/7") == (200, {"step": "GetUser", "params": {"id": "7"}})
    assert await get("DELETE", "/users/ann/posts/12/") == (
        200, {"step": "GetPost", "params": {"user_id": "ann", "post_id": "12"}})
    assert await get("GET", "/orders/42") == (
        200, {"step": "GetOrder", "params": {"order_id": "42"}})
    # A colon inside a segment is an ordinary character, as in Google-style methods.
    assert await get("POST", "/v1/models:generate") == (200, {"step": "Generate", "params": {}})
    status, body = await get("GET", "/users/:id")
    assert (status, body["params"]) == (200, {"id": ":id"}), "only the template is a parameter"
    status, body = await get("GET", "/orders/abc")
    assert status == 404
    assert body["error"] == "Not Found"


def test_colon_and_brace_paths_are_one_route(tmp_path: Path, write_steps: WriteSteps) -> None:
    """`/users/:id` and `/users/{key}` on one method clash, naming the first file."""
    steps = write_steps({"a_step.py": echo_step("A", "/users/:id"),
                         "b_step.py": echo_step("B", "/users/{key}")})
    with pytest.raises(LoadErrors) as info:
        load_project(steps)
    [error] = info.value.errors
    assert error.path == str((steps / "b_step.py").resolve())
    assert error.message == (f"route GET /users/{{key}} is already served by "
                             f"{(steps / 'a_step.py').resolve()}")


@pytest.mark.parametrize(("path", "problem"), [
    ("/users/:id/{post}", "mixes :name and {name} parameters; write them all one way"),
    ("/users/:id/friends/:id", "names the parameter 'id' more than once; each needs a name "
                               "of its own"),
    ("/a/{id}/b/{id:[0-9]+}", "names the parameter 'id' more than once; each needs a name "
                              "of its own"),
    ("/users/:", "':' names no parameter; expected a letter or _ then letters, digits or _ up "
                 "to the next '/' (for a parameter inside a segment write {name}, as in "
                 "/files/{name}.json)"),
    ("/users/:1st", "':1st' is not a parameter name; expected a letter or _ then letters, "
                    "digits or _ up to the next '/' (for a parameter inside a segment write "
                    "{name}, as in /files/{name}.json)"),
    ("/files/:name.json", "':name.json' is not a parameter name;"),
    ("/users/{}", "{} is not a path parameter; expected {name} or {name:regex}, the name a "
                  "letter or _ then letters, digits or _"),
    ("/users/{user-id}", "{user-id} is not a path parameter;"),
    ("/users/{id", "has an unmatched brace in '/users/{id'"),
    ("/users/{id:[0-9}", "is not a route: Bad pattern"),
])
def test_bad_path_is_a_load_error_naming_the_file(
    write_steps: WriteSteps, path: str, problem: str
) -> None:
    """Mixed styles, a repeated name, an empty or invalid name, a broken regex: the file
    and what is wrong, at load, not a crash when the router is built."""
    steps = write_steps({"bad_path_step.py": echo_step("BadPath", path)})
    with pytest.raises(LoadErrors) as info:
        load_project(steps)
    [error] = info.value.errors
    assert error.path == str((steps / "bad_path_step.py").resolve())
    assert error.message.startswith(f"path {path!r}")
    assert problem in error.message


async def test_workbench_and_openapi_show_the_template(
    path_steps: Path, make_client: ClientFactory, tmp_path: Path
) -> None:
    """The workbench lists `/users/{id}`; OpenAPI has that path with its `id` parameter."""
    settings = Settings(steps_dir=path_steps, store="memory", workbench=True,
                        data_dir=tmp_path / ".motia")
    client: TestClient[Any, Any] = await make_client(settings)
    steps = await (await client.get("/__motia/steps")).json()
    paths = {s["name"]: s["path"] for s in steps if s["type"] == "api"}
    assert paths == {"GetUser": "/users/{id}",
                     "GetPost": "/users/{user_id}/posts/{post_id}/",
                     "GetOrder": "/orders/{order_id:[0-9]+}",
                     "Generate": "/v1/models:generate"}
    document = await (await client.get("/openapi.json")).json()
    user = document["paths"]["/users/{id}"]["get"]
    assert user["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    post = document["paths"]["/users/{user_id}/posts/{post_id}/"]["delete"]
    assert [p["name"] for p in post["parameters"]] == ["user_id", "post_id"]
    assert "/v1/models:generate" in document["paths"]
    assert not any(":id" in path for path in document["paths"])
