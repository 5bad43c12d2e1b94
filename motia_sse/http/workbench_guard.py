"""Who may read the workbench: whether it is served at all, and its token.

`dev` serves the workbench (the page, `/__motia/*`, `/openapi.json`) to whoever
reaches it; `start` only with `--workbench`. With `--workbench-token` every part of it
answers only a request that presents the token: as `Authorization: Bearer <token>`
(scripts, curl) or in the cookie that the page's login form sets (browsers, whose
`EventSource` cannot send headers). Without it, `/__motia/*` is a 401 JSON error and
the page is a form asking for the token.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from motia_sse.http.responses import error_response
from motia_sse.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COOKIE = "motia_workbench"
LOGIN_PATH = "/__motia/login"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="motia-sse workbench"'}


def workbench_served(settings: Settings) -> bool:
    """Whether this server serves the workbench: always in `dev`, if asked in `start`."""
    return settings.dev or settings.workbench


def guard(handler: Handler, token: str | None) -> Handler:
    """`handler`, answering 401 JSON to a request without the token (if there is one)."""
    return _guarded(handler, token, lambda: error_response(401, "workbench token required", [
        "send Authorization: Bearer <token>, or open the workbench page to log in"],
        _CHALLENGE))


def guard_page(handler: Handler, token: str | None) -> Handler:
    """The page's `handler`, or the login form for a browser without the token."""
    return _guarded(handler, token, lambda: _login_page(
        "This workbench asks for its token (--workbench-token).", "__motia/login"))


def _guarded(handler: Handler, token: str | None,
             refuse: Callable[[], web.StreamResponse]) -> Handler:
    """`handler` for a request that presents `token` (all of them without one); `refuse()`
    for any other. One check, so the API and the page cannot drift apart."""
    if token is None:
        return handler

    async def guarded(request: web.Request) -> web.StreamResponse:
        if _presents(request, token):
            return await handler(request)
        return refuse()

    return guarded


def add_login(app: web.Application, token: str | None) -> None:
    """`POST /__motia/login`: the form's token, if right, becomes the workbench cookie."""
    if token is None:
        return

    async def login(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not _same(given, token):
            return _login_page("That is not the workbench token.", "login")
        # Relative, so that it leads back to the page under any root path.
        response = web.Response(status=303, headers={"Location": "../"})
        # HttpOnly: no script reads it; Strict: no other site's page sends it.
        response.set_cookie(COOKIE, token, path="/", httponly=True, samesite="Strict",
                            secure=request.secure)
        return response

    app.router.add_post(LOGIN_PATH, login)


def _presents(request: web.Request, token: str) -> bool:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _same(credentials.strip(), token):
        return True
    cookie = request.cookies.get(COOKIE)
    return cookie is not None and _same(cookie, token)


def _same(given: str, token: str) -> bool:
    # Constant time: how long a wrong guess takes tells nothing about the token.
    return hmac.compare_digest(given.encode(), token.encode())


def _login_page(message: str, action: str) -> web.Response:
    """The form, at `/` or (after a wrong token) at the login URL; `action` is the login
    URL relative to where it is served, so that it works under a root path too."""
    html = _LOGIN_HTML.replace("{message}", message).replace("{action}", action)
    return web.Response(status=401, text=html, content_type="text/html",
                        headers={**_CHALLENGE, "Cache-Control": "no-store"})


# Inline and self-contained: the workbench's own files are behind the token too.
_LOGIN_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>motia_sse workbench: log in</title>
  <link rel="icon" href="data:,">
  <style>
    body { font: 15px/1.5 system-ui, sans-serif; display: grid; place-items: center;
           min-height: 90vh; margin: 0; background: #f6f7f9; color: #1d2330; }
    form { background: #fff; padding: 1.5rem 2rem; border-radius: 8px;
           box-shadow: 0 1px 4px rgba(0, 0, 0, .12); display: grid; gap: .75rem; }
    input, button { font: inherit; padding: .4rem .6rem; }
  </style>
</head>
<body>
  <form method="post" action="{action}">
    <strong>motia_sse workbench</strong>
    <span>{message}</span>
    <label>Token <input type="password" name="token" autocomplete="current-password"
                        required autofocus></label>
    <button type="submit">Open the workbench</button>
  </form>
</body>
</html>
"""
