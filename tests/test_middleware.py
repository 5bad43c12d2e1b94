"""API middleware: around the handler in order, answering alone, failing as a handler does."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from motia_sse import LoadErrors, Settings
from motia_sse.run.loader import load_project
from tests.conftest import ClientFactory, WriteSteps

# The project-wide list, and a helper module of route middleware both kinds of step use.
PROJECT_MIDDLEWARE = '''
from shared import stamp

middleware = [stamp("project")]
'''

SHARED = '''
from motia_sse import ApiRequest, ApiResponse, FlowContext, Middleware, Next


def stamp(name: str) -> Middleware:
    """A middleware that logs on the way in and adds its name to x-order on the way out."""

    async def middleware(req: ApiRequest[object], ctx: FlowContext, next: Next) -> ApiResponse:
        ctx.logger.info(f"entered {name}")
        response = await next()
        order = f"{response.headers.get('x-order', '')},{name}"
        return ApiResponse(response.status, response.body, {**response.headers, "x-order": order})

    middleware.__name__ = name
    return middleware
'''

ORDERED_STEP = '''
from motia_sse import ApiRouteConfig
from shared import stamp

config = ApiRouteConfig(name="Ordered", path="/ordered", method="GET",
                        middleware=[stamp("first"), stamp("second"), stamp("third")])

async def handler(req, ctx):
    ctx.logger.info("entered handler")
    # The dict form: next() still gives the middleware an ApiResponse.
    return {"status": 200, "body": {"ok": True}, "headers": {"x-order": "handler"}}
'''

PLAIN_STEP = '''
from motia_sse import ApiResponse, ApiRouteConfig

config = ApiRouteConfig(name="Plain", path="/plain", method="GET")

async def handler(req, ctx):
    return ApiResponse(200, {"plain": True}, {"x-order": "handler"})
'''

AUTH_STEP = '''
from motia_sse import ApiResponse, ApiRouteConfig

async def require_token(req, ctx, next):
    if req.headers.get("Authorization") != "Bearer sesame":
        ctx.logger.info("refused a request without the token")
        return {"status": 401, "body": {"error": "unauthorized", "details": ["send a token"]}}
    return await next()

async def envelope(req, ctx, next):
    response = await next()
    return ApiResponse(201, {"data": response.body, "wrapped": True},
                       {**response.headers, "x-wrapped": "yes"})

config = ApiRouteConfig(name="Secret", path="/secret", method="POST",
                        middleware=[require_token, envelope])

async def handler(req, ctx):
    ctx.logger.info("the handler ran")
    return ApiResponse(200, {"secret": 42})
'''

WHO_STEP = '''
from motia_sse import ApiResponse, ApiRouteConfig

USERS = {"sesame": "ada"}

async def identify(req, ctx, next):
    user = USERS.get(req.headers.get("Authorization", "").removeprefix("Bearer "))
    if user is None:
        return ApiResponse(401, {"error": "unauthorized", "details": ["send a token"]})
    req.extra["user"] = user
    return await next()

config = ApiRouteConfig(name="Whoami", path="/whoami", method="GET", middleware=[identify])

async def handler(req, ctx):
    return ApiResponse(200, {"user": req.extra["user"]})
'''

FAILING_STEP = '''
from motia_sse import ApiResponse, ApiRouteConfig

async def explode(req, ctx, next):
    raise RuntimeError("the rate limiter is broken")

config = ApiRouteConfig(name="Fragile", path="/fragile/{how}", method="GET",
                        middleware=[explode])

async def handler(req, ctx):
    return ApiResponse(200, {"reached": True})
'''

FORGOT_STEP = '''
from motia_sse import ApiResponse, ApiRouteConfig

async def forgetful(req, ctx, next):
    await next()  # no return: the route has no answer

config = ApiRouteConfig(name="Forgot", path="/forgot", method="GET", middleware=[forgetful])

async def handler(req, ctx):
    return ApiResponse(200, {"reached": True})
'''


@pytest.fixture(name="steps")
def _steps(write_steps: WriteSteps) -> Path:
    """A project with project-wide middleware and routes that use their own."""
    return write_steps({"middleware.py": PROJECT_MIDDLEWARE, "shared.py": SHARED,
                        "ordered_step.py": ORDERED_STEP, "plain_step.py": PLAIN_STEP,
                        "secret_step.py": AUTH_STEP, "whoami_step.py": WHO_STEP,
                        "fragile_step.py": FAILING_STEP,
                        "forgot_step.py": FORGOT_STEP})


@pytest.fixture(name="dev_client")
async def _dev_client(steps: Path, make_client: ClientFactory) -> TestClient[Any, Any]:
    """The project, served as `dev` serves it."""
    return await make_client(Settings(steps_dir=steps, store="memory", dev=True))


async def test_auth_middleware_answers_without_the_handler(
    dev_client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A middleware returning without `next()` answers (the dict form too); the handler,
    and the middleware after it, never run."""
    with caplog.at_level(logging.INFO):
        refused = await dev_client.post("/secret", json={})
    assert refused.status == 401
    assert await refused.json() == {"error": "unauthorized", "details": ["send a token"]}
    assert "x-wrapped" not in refused.headers
    assert refused.headers["x-order"] == ",project", "the project's middleware saw the answer"
    messages = [r.getMessage() for r in caplog.records]
    assert "refused a request without the token" in messages
    assert "the handler ran" not in messages

    allowed = await dev_client.post("/secret", json={},
                                    headers={"Authorization": "Bearer sesame"})
    assert allowed.status == 201
    assert await allowed.json() == {"data": {"secret": 42}, "wrapped": True}
    assert allowed.headers["x-wrapped"] == "yes"


async def test_middleware_hands_what_it_found_to_the_handler(
    dev_client: TestClient[Any, Any],
) -> None:
    """`req.extra` carries what a middleware found (the user a token names) to the handler."""
    known = await dev_client.get("/whoami", headers={"Authorization": "Bearer sesame"})
    assert (known.status, await known.json()) == (200, {"user": "ada"})
    unknown = await dev_client.get("/whoami", headers={"Authorization": "Bearer nope"})
    assert unknown.status == 401


async def test_middleware_runs_in_order_project_wide_first(
    dev_client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The project's middleware, then the route's in the order listed, each around the
    next: in on the way down, out in reverse on the way back; all on the request's trace."""
    with caplog.at_level(logging.INFO):
        response = await dev_client.get("/ordered")
    assert response.status == 200
    assert await response.json() == {"ok": True}
    assert response.headers["x-order"] == "handler,third,second,first,project"
    trace_id = response.headers["x-trace-id"]
    entered = [r.getMessage() for r in caplog.records
               if r.getMessage().startswith("entered ")]
    assert entered == ["entered project", "entered first", "entered second", "entered third",
                       "entered handler"]
    assert {getattr(r, "trace_id", None) for r in caplog.records
            if r.getMessage().startswith("entered ")} == {trace_id}

    plain = await dev_client.get("/plain")
    assert plain.headers["x-order"] == "handler,project", "a route of its own gets the project's"


async def test_an_exception_in_middleware_is_the_traced_500(
    dev_client: TestClient[Any, Any], steps: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A middleware that raises fails the step as its handler would: a JSON 500 with the
    trace id and the line, and the traceback logged under that trace."""
    with caplog.at_level(logging.ERROR):
        response = await dev_client.get("/fragile/now")
    assert response.status == 500
    body = await response.json()
    trace_id = response.headers["x-trace-id"]
    assert body["trace_id"] == trace_id
    assert body["error"] == "step 'Fragile' failed"
    assert body["details"][0] == "RuntimeError: the rate limiter is broken"
    assert body["details"][1] == f"at {steps / 'fragile_step.py'}:5"
    record = next(r for r in caplog.records if "handler failed" in r.getMessage())
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert getattr(record, "trace_id", None) == trace_id
    assert (await dev_client.get("/plain")).status == 200, "the server goes on"


# A project whose middleware raises outside the step's own folder.
JAMMED_PROJECT = {
    "middleware.py": (
        "async def gate(req, ctx, next):\n"
        "    if req.query_params.get('jam'):\n"
        "        raise RuntimeError('the gate is jammed')\n"
        "    return await next()\n"
        "\n"
        "middleware = [gate]\n"),
    "limits.py": (
        "async def limit(req, ctx, next):\n"
        "    raise RuntimeError('the limiter is broken')\n"),
    "orders/list_step.py": (
        "from motia_sse import ApiRouteConfig\n"
        "config = ApiRouteConfig(name='Orders', path='/orders')\n"
        "async def handler(req, ctx):\n"
        "    return {'status': 200, 'body': []}\n"),
    "orders/limited_step.py": (
        "from motia_sse import ApiRouteConfig\n"
        "from limits import limit\n"
        "config = ApiRouteConfig(name='Limited', path='/limited', middleware=[limit])\n"
        "async def handler(req, ctx):\n"
        "    return {'status': 200, 'body': []}\n"),
}


@pytest.mark.parametrize(("url", "where"), [("/orders?jam=1", "middleware.py:3"),
                                             ("/limited", "limits.py:2")])
async def test_a_failure_outside_the_steps_own_folder_names_the_line_that_raised(
    write_steps: WriteSteps, make_client: ClientFactory, caplog: pytest.LogCaptureFixture,
    url: str, where: str
) -> None:
    """For a step in a subfolder, the dev 500 and the log point at the line of the
    project's middleware.py (or helper module) that raised, not at the step file."""
    steps = write_steps(JAMMED_PROJECT)
    client = await make_client(Settings(steps_dir=steps, store="memory", dev=True))
    with caplog.at_level(logging.ERROR):
        response = await client.get(url)
    assert response.status == 500
    assert (await response.json())["details"][1] == f"at {steps / where}"
    assert any(r.getMessage() == f"handler failed at {steps / where}" for r in caplog.records)


async def test_middleware_that_forgets_to_return_is_named(
    dev_client: TestClient[Any, Any]
) -> None:
    """`await next()` without `return`: the 500 says which middleware returned nothing."""
    response = await dev_client.get("/forgot")
    assert response.status == 500
    body = await response.json()
    assert body["details"][0] == ("TypeError: middleware 'forgetful' returned NoneType; "
                                  "expected ApiResponse or a dict with 'status' and 'body'")


async def test_start_hides_where_a_middleware_failed(
    steps: Path, make_client: ClientFactory
) -> None:
    """Facing the internet, a middleware's failure names the step and trace only."""
    client = await make_client(Settings(steps_dir=steps, store="memory"))
    response = await client.get("/fragile/now")
    trace_id = response.headers["x-trace-id"]
    assert response.status == 500
    assert await response.json() == {
        "error": "step 'Fragile' failed", "trace_id": trace_id,
        "details": [f"the server log has the error under trace {trace_id}"]}


async def test_workbench_and_openapi_name_each_routes_middleware(
    steps: Path, make_client: ClientFactory
) -> None:
    """`/__motia/steps` lists a route's middleware, outermost first, with its file;
    the OpenAPI operation has them as `x-middleware`."""
    client = await make_client(Settings(steps_dir=steps, store="memory", dev=True))
    described = {s["name"]: s for s in await (await client.get("/__motia/steps")).json()}
    assert described["Secret"]["middleware"] == [
        {"name": "project", "file": "shared.py"},
        {"name": "require_token", "file": "secret_step.py"},
        {"name": "envelope", "file": "secret_step.py"}]
    assert [m["name"] for m in described["Plain"]["middleware"]] == ["project"]
    document = await (await client.get("/openapi.json")).json()
    assert document["paths"]["/secret"]["post"]["x-middleware"] == [
        "project", "require_token", "envelope"]
    assert document["paths"]["/ordered"]["get"]["x-middleware"] == [
        "project", "first", "second", "third"]


def test_a_project_without_middleware_has_none(write_steps: WriteSteps) -> None:
    """No middleware.py, none listed: the route runs its handler alone."""
    project = load_project(write_steps({"plain_step.py": PLAIN_STEP}))
    assert project.api_steps[0].middleware == ()


@pytest.mark.parametrize(
    ("files", "where", "message"),
    [
        ({"x_step.py": "from motia_sse import ApiRouteConfig\n"
                       "def mw(req, ctx, next): pass\n"
                       "config = ApiRouteConfig(name='X', path='/x', middleware=[mw])\n"
                       "async def handler(req, ctx): pass\n"},
         "x_step.py", "middleware[0] (mw, {file}:2) must be `async def mw(req, ctx, next)`, "
                      "found function"),
        ({"x_step.py": "from motia_sse import ApiRouteConfig\n"
                       "async def mw(req, ctx): pass\n"
                       "config = ApiRouteConfig(name='X', path='/x', middleware=[mw])\n"
                       "async def handler(req, ctx): pass\n"},
         "x_step.py", "middleware[0] (mw, {file}:2) must take three arguments "
                      "(req, ctx, next), found (req, ctx)"),
        ({"x_step.py": "from motia_sse import ApiRouteConfig\n"
                       "async def mw(req, ctx, next): pass\n"
                       "config = ApiRouteConfig(name='X', path='/x', middleware=mw)\n"
                       "async def handler(req, ctx): pass\n"},
         "x_step.py", "import failed: TypeError: middleware must be a list of async functions, "
                      "e.g. middleware=[mw]"),
        ({"middleware.py": "async def auth(req, ctx, next): pass\n"},
         "middleware.py", "expected `middleware = [...]`, the middleware run before every "
                          "route's own, found nothing"),
        ({"middleware.py": "middleware = [print]\n"},
         "middleware.py", "middleware[0] (print) must be `async def mw(req, ctx, next)`, "
                          "found builtin_function_or_method"),
    ],
)
def test_middleware_mistakes_are_load_errors_naming_the_file(
    write_steps: WriteSteps, files: dict[str, str], where: str, message: str
) -> None:
    """A sync function, a wrong signature, a lone function for a list, a middleware.py
    without its list: each stops the load, in the file that has it."""
    steps = write_steps(files)
    with pytest.raises(LoadErrors) as info:
        load_project(steps)
    [error] = info.value.errors
    assert error.path.startswith(str(steps / where))
    assert error.message.startswith(message.format(file=steps / where))


def test_a_middleware_helper_in_a_subfolder_is_no_project_list(
    write_steps: WriteSteps
) -> None:
    """Only the top's middleware.py is the project's list; one in a subfolder is a module."""
    steps = write_steps({"billing/middleware.py": "async def audit(req, ctx, next): pass\n",
                         "plain_step.py": PLAIN_STEP})
    assert load_project(steps).api_steps[0].middleware == ()
