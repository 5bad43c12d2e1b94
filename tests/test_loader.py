"""load_project: every problem in a steps folder is reported with the file (and line) to fix."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from motia_sse.exceptions import LoadErrors
from motia_sse.run.config import EventConfig
from motia_sse.run.loader import load_project
from tests.conftest import EXAMPLE_STEPS, free_port

RESERVED = "(/streams, /__motia, /openapi.json)"
METHODS = "GET, POST, PUT, PATCH, DELETE"


def write(path: Path, source: str) -> Path:
    """Write a dedented step or stream file; return its resolved path, as errors show it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip("\n"))
    return path.resolve()


def line_of(path: Path, needle: str) -> int:
    """1-based number of the only line of `path` that contains `needle`."""
    lines = [n for n, text in enumerate(path.read_text().splitlines(), 1) if needle in text]
    assert len(lines) == 1, (needle, lines)
    return lines[0]


def api_step(name: str, path: str, method: str = "GET", emits: tuple[str, ...] = ()) -> str:
    """Source of a valid API step."""
    return f"""
        from motia_sse import ApiRouteConfig

        config = ApiRouteConfig(name={name!r}, path={path!r}, method={method!r},
                                emits={list(emits)!r})


        async def handler(req, ctx):
            return None
        """


def event_step(name: str, subscribes: tuple[str, ...], emits: tuple[str, ...] = ()) -> str:
    """Source of a valid event step."""
    return f"""
        from motia_sse import EventConfig

        config = EventConfig(name={name!r}, subscribes={list(subscribes)!r}, emits={list(emits)!r})


        async def handler(input, ctx):
            return None
        """


def stream(name: str) -> str:
    """Source of a valid stream."""
    return f"""
        import attrs

        from motia_sse import StreamConfig


        @attrs.frozen
        class Item:
            text: str


        config = StreamConfig(name={name!r}, schema=Item)
        """


def load_errors(steps_dir: Path) -> list[tuple[str, str]]:
    """Load `steps_dir`, which must fail; return each error's (path, message)."""
    with pytest.raises(LoadErrors) as info:
        load_project(steps_dir)
    for error in info.value.errors:
        assert str(error) == f"{error.path}: {error.message}"
    return [(error.path, error.message) for error in info.value.errors]


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    """A syntax error is reported as file:line, "import failed"."""
    step = write(tmp_path / "syntax_err_step.py", """
        from motia_sse import EventConfig

        def handler(:
            pass
        """)
    assert load_errors(tmp_path) == [(
        f"{step}:3",
        "import failed: SyntaxError: invalid syntax (syntax_err_step.py, line 3)",
    )]


def test_raise_at_import_names_line_of_raise(tmp_path: Path) -> None:
    """An exception while importing a step names the file and the line that raised."""
    step = write(tmp_path / "raises_step.py", """
        SETTING = 1


        def check():
            raise RuntimeError("no database configured")


        check()
        """)
    assert load_errors(tmp_path) == [(
        f"{step}:{line_of(step, 'raise RuntimeError')}",
        "import failed: RuntimeError: no database configured",
    )]


def test_missing_and_wrong_config(tmp_path: Path) -> None:
    """A step without `config`, or with a config of the wrong type, is named with what was found."""
    missing = write(tmp_path / "no_config_step.py", """
        async def handler(req, ctx):
            return None
        """)
    wrong = write(tmp_path / "wrong_config_step.py", """
        config = {"name": "Wrong"}


        async def handler(req, ctx):
            return None
        """)
    expected = ("expected `config = ApiRouteConfig(...)`, `EventConfig(...)`, "
                "`CronConfig(...)` or `NoopConfig(...)`, found ")
    assert load_errors(tmp_path) == [
        (str(missing), expected + "nothing"),
        (str(wrong), expected + "dict {'name': 'Wrong'}"),
    ]


def test_handler_not_async(tmp_path: Path) -> None:
    """A plain `def handler` is rejected, naming the file."""
    step = write(tmp_path / "sync_handler_step.py", """
        from motia_sse import ApiRouteConfig

        config = ApiRouteConfig(name="Sync", path="/sync")


        def handler(req, ctx):
            return None
        """)
    [(path, message)] = load_errors(tmp_path)
    assert path == str(step)
    assert re.fullmatch(r"expected `async def handler\(\.\.\.\)`, "
                        r"found function <function handler at 0x[0-9a-f]+>", message), message


@pytest.mark.parametrize(("kind", "params", "expected"), [
    ("api", "req", "handler must take two arguments (req, ctx), found (req)"),
    ("api", "req, ctx, extra",
     "handler must take two arguments (req, ctx), found (req, ctx, extra)"),
    ("api", "req, *, ctx", "handler must take two arguments (req, ctx), found (req, ctx)"),
    ("event", "input", "handler must take two arguments (input, ctx), found (input)"),
    ("event", "", "handler must take two arguments (input, ctx), found ()"),
    ("event", "input, ctx, extra",
     "handler must take two arguments (input, ctx), found (input, ctx, extra)"),
])
def test_handler_arity(tmp_path: Path, kind: str, params: str, expected: str) -> None:
    """A handler with the wrong arguments is reported at the line of its `async def`."""
    config = ('ApiRouteConfig(name="Arity", path="/arity")' if kind == "api"
              else 'EventConfig(name="Arity", subscribes=["t"])')
    step = write(tmp_path / f"arity_{kind}_step.py", f"""
        from motia_sse import ApiRouteConfig, EventConfig

        config = {config}


        async def handler({params}):
            return None
        """)
    assert load_errors(tmp_path) == [(f"{step}:{line_of(step, 'async def handler')}", expected)]


@pytest.mark.parametrize(("first_path", "second_path", "second_method"), [
    ("/items", "/items", "GET"),
    ("/items", "/items/", "get"),
    ("/items/{id}", "/items/{key}", "GET"),
])
def test_duplicate_route_names_first_file(
    tmp_path: Path, first_path: str, second_path: str, second_method: str
) -> None:
    """The second step serving the same route is reported, naming the first step's file."""
    first = write(tmp_path / "a_route_step.py", api_step("RouteA", first_path))
    second = write(tmp_path / "b_route_step.py", api_step("RouteB", second_path, second_method))
    assert load_errors(tmp_path) == [
        (str(second), f"route GET {second_path} is already served by {first}"),
    ]


def test_same_path_other_method_is_fine(tmp_path: Path) -> None:
    """GET and POST on one path are two routes, not a clash."""
    write(tmp_path / "get_same_step.py", api_step("GetSame", "/same/{id}"))
    write(tmp_path / "post_same_step.py", api_step("PostSame", "/same/{id}", "POST"))
    project = load_project(tmp_path)
    assert sorted(s.name for s in project.api_steps) == ["GetSame", "PostSame"]


def test_duplicate_stream_names_both_files(tmp_path: Path) -> None:
    """Two streams with one name: the second file is reported, naming the first."""
    first = write(tmp_path / "a_dup_stream.py", stream("dup"))
    second = write(tmp_path / "b_dup_stream.py", stream("dup"))
    assert load_errors(tmp_path) == [(str(second), f"stream 'dup' is already defined in {first}")]


@pytest.mark.parametrize("route", ["/streams", "/streams/", "/streams/x/y/z", "/__motia",
                                   "/__motia/workbench"])
def test_reserved_route(tmp_path: Path, route: str) -> None:
    """Paths the server serves itself cannot be taken by a step."""
    step = write(tmp_path / "reserved_step.py", api_step("Reserved", route))
    assert load_errors(tmp_path) == [
        (str(step), f"path {route!r} is reserved by the server {RESERVED}"),
    ]


def test_route_that_only_looks_reserved_is_fine(tmp_path: Path) -> None:
    """`/streamsx` and `/api/streams` are not under a reserved prefix."""
    write(tmp_path / "lookalike_a_step.py", api_step("LookA", "/streamsx"))
    write(tmp_path / "lookalike_b_step.py", api_step("LookB", "/api/streams"))
    assert len(load_project(tmp_path).api_steps) == 2


@pytest.mark.parametrize("method", ["FETCH", "HEAD", ""])
def test_bad_method(tmp_path: Path, method: str) -> None:
    """A method the server does not route is rejected, listing the allowed ones."""
    step = write(tmp_path / "bad_method_step.py", api_step("BadMethod", "/m", method))
    assert load_errors(tmp_path) == [(str(step), f"method {method!r} is not one of {METHODS}")]


def test_path_without_slash(tmp_path: Path) -> None:
    """A route path must start with '/'."""
    step = write(tmp_path / "no_slash_step.py", api_step("NoSlash", "items"))
    assert load_errors(tmp_path) == [(str(step), "path 'items' must start with '/'")]


def test_unheard_topic_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A topic that no step subscribes to is one warning, in project.warnings and the log."""
    # cli.setup_logging stops "motia_sse" records from reaching caplog's root handler.
    monkeypatch.setattr(logging.getLogger("motia_sse"), "propagate", True)
    lonely = write(tmp_path / "lonely_step.py",
                   api_step("Lonely", "/lonely", "POST", emits=("heard", "unheard")))
    write(tmp_path / "listener_step.py", event_step("Listener", subscribes=("heard",)))
    with caplog.at_level(logging.WARNING, logger="motia_sse.run.loader"):
        project = load_project(tmp_path)
    expected = f"{lonely}: step 'Lonely' emits 'unheard', but no step subscribes to it"
    assert project.warnings == [expected]
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("motia_sse.run.loader", logging.WARNING, expected),
    ]


def test_all_errors_reported_together(tmp_path: Path) -> None:
    """Several broken files give one LoadErrors listing each of them, streams first."""
    syntax = write(tmp_path / "many_a_step.py", "x = (\n")
    no_config = write(tmp_path / "many_b_step.py", "async def handler(req, ctx):\n    pass\n")
    sync = write(tmp_path / "many_c_step.py", api_step("ManyC", "/c").replace("async def",
                                                                                "def"))
    bad_stream = write(tmp_path / "many_bad_stream.py", stream("not a name"))
    write(tmp_path / "many_good_step.py", api_step("ManyGood", "/good"))
    with pytest.raises(LoadErrors) as info:
        load_project(tmp_path)
    errors = info.value.errors
    assert [e.path for e in errors] == [str(bad_stream), f"{syntax}:1", str(no_config), str(sync)]
    assert errors[0].message == ("stream name 'not a name' must be a Python identifier "
                                 "not starting with '__' (it becomes ctx.streams.<name>)")
    assert errors[1].message == ("import failed: SyntaxError: '(' was never closed "
                                 "(many_a_step.py, line 1)")
    assert errors[2].message.endswith("found nothing")
    assert errors[3].message.startswith("expected `async def handler(...)`, found function")
    assert str(info.value) == "\n".join(str(e) for e in errors)


def test_example_project_loads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A copy of the example steps loads: 2 API steps, 2 event steps, 2 streams, no warnings."""
    steps_dir = tmp_path / "steps"
    shutil.copytree(EXAMPLE_STEPS, steps_dir, ignore=shutil.ignore_patterns("__pycache__"))
    with caplog.at_level(logging.WARNING):
        project = load_project(steps_dir)
    assert sorted(s.name for s in project.api_steps) == ["OpenAiApi", "StartJob"]
    assert sorted(s.name for s in project.event_steps) == ["CallOpenAi", "RunJob"]
    assert sorted(s.config.name for s in project.streams) == ["openai", "progress"]
    assert project.warnings == []
    assert caplog.records == []
    loaded = project.api_steps + project.event_steps + project.streams
    assert all(item.path.parent == steps_dir.resolve() for item in loaded)


@pytest.mark.parametrize("stream_dir", [
    pytest.param("sub", id="sibling-in-subfolder"),
    pytest.param(".", id="stream-at-top-level"),
])
def test_subfolder_step_imports_stream_schema(tmp_path: Path, stream_dir: str) -> None:
    """A step in a subfolder imports a stream's schema; it is the very class the stream uses."""
    module = "sibling_thing_stream" if stream_dir == "sub" else "top_thing_stream"
    # Subfolders are packages under the steps folder: siblings import relatively.
    source = f".{module}" if stream_dir == "sub" else module
    write(tmp_path / stream_dir / f"{module}.py", """
        import attrs

        from motia_sse import StreamConfig


        @attrs.frozen
        class Thing:
            n: int


        config = StreamConfig(name="things", schema=Thing)
        """)
    write(tmp_path / "sub" / f"uses_{module}_step.py", f"""
        from motia_sse import EventConfig
        from {source} import Thing

        config = EventConfig(name="UsesThing", subscribes=["thing"], input=Thing)


        async def handler(input, ctx):
            return None
        """)
    project = load_project(tmp_path)
    [step] = project.event_steps
    [things] = project.streams
    assert step.path == (tmp_path / "sub" / f"uses_{module}_step.py").resolve()
    assert isinstance(step.config, EventConfig)
    assert step.config.input is things.config.schema


def test_syntax_error_in_imported_module_names_import_line(tmp_path: Path) -> None:
    """A step importing a broken helper is reported at its own import line, not the helper's."""
    write(tmp_path / "broken_helper.py", "A = 1\nB = 2\nC = 3\nD = 4\nVALUE = (\n")
    step = write(tmp_path / "imports_broken_step.py", """
        from motia_sse import EventConfig
        import broken_helper
        """)
    [(path, message)] = load_errors(tmp_path)
    assert path == f"{step}:{line_of(step, 'import broken_helper')}"
    assert message == "import failed: SyntaxError: '(' was never closed (broken_helper.py, line 5)"


def test_plain_sibling_import_in_subfolder_teaches_the_fix(tmp_path: Path) -> None:
    """`from sibling import X` in a subfolder fails with a hint naming both working forms."""
    write(tmp_path / "deep" / "lonely_thing_stream.py", "X = 1\n")
    step = write(tmp_path / "deep" / "wants_lonely_step.py", """
        from lonely_thing_stream import X
        """)
    errors = load_errors(tmp_path)
    assert (f"{step}:{line_of(step, 'from lonely_thing_stream')}",
            "import failed: ModuleNotFoundError: No module named 'lonely_thing_stream' "
            "(a sibling in a subfolder is imported as `from .lonely_thing_stream import ...` "
            "or `from deep.lonely_thing_stream import ...`)") in errors


def test_cli_start_fails_on_broken_steps(tmp_path: Path) -> None:
    """`motia_sse start` on a broken folder exits 1 and names the broken file on stderr."""
    steps_dir = tmp_path / "steps"
    step = write(steps_dir / "cli_broken_step.py", """
        from motia_sse import ApiRouteConfig

        raise ValueError("bad step")
        """)
    result = subprocess.run(
        [sys.executable, "-m", "motia_sse", "start", "--steps", str(steps_dir),
         "--port", str(free_port())],
        cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"motia-sse: cannot load {steps_dir}:",
        f"  {step}:3: import failed: ValueError: bad step",
    ]
