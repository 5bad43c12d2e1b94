"""What the browser tests do on the workbench page more than once."""

from __future__ import annotations

from tests.playwright_api import Locator, Page, expect


async def run_start_job(page: Page, wait_ms: int) -> Locator:
    """Test the example StartJob endpoint from its open panel (3 steps, 0.3 s apart) and
    wait for its 200; the panel's response element."""
    panel = page.locator('.endpoint-panel[data-step="StartJob"]')
    await panel.get_by_label("steps").fill("3")
    await panel.get_by_label("delay").fill("0.3")
    await panel.get_by_role("button", name="Test").click()
    response = panel.locator(".response")
    await expect(response).to_have_attribute("data-status", "200", timeout=wait_ms)
    return response
