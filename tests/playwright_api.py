"""Playwright's names for the browser tests. A test module importing them is skipped
where playwright is not installed, except in CI (`CI=true`), where that fails the run."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI") == "true"

try:
    from playwright.async_api import Browser, Locator, Page, Request, Response, expect
except ImportError:  # pragma: no cover - depends on the machine
    if IN_CI:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

__all__ = ["IN_CI", "Browser", "Locator", "Page", "Request", "Response", "expect"]
