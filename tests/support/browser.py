"""Accessibility checks for the browser tests: axe-core (WCAG 2.2 A and AA rules) on a page, the
keyboard focus as a keyboard user moves it, the focus ring's contrast, and a JSON API client to
set the scene the pages are checked in."""

from __future__ import annotations

import re
from typing import Any

from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import APIRequestContext, Browser, Page

from tests.support.triage_data import PASSWORD

# The WCAG 2.0, 2.1 and 2.2 A and AA rules only (not best practices, not AAA).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
_AXE = Axe()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG A/AA violations on the page as it is now."""
    violations: list[dict[str, Any]] = _AXE.run(page, options=AXE_OPTIONS).response["violations"]
    return violations


def described(where: str, violations: list[dict[str, Any]]) -> str:
    """Each violation's id, impact and help, and the failing nodes' targets with axe's reason."""
    lines = [f"{where}: {len(violations)} axe violation(s)"]
    for v in violations:
        lines.append(f"  {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"]:
            target = " ".join(str(t) for t in node["target"])
            reason = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    - {target}: {reason}")
    return "\n".join(lines)


# -- the keyboard -------------------------------------------------------------------------------------

_FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) { return ""; }
  const name = (e.getAttribute("aria-label") || e.innerText || e.value || e.name || "").trim().slice(0, 40);
  return e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.type ? "[" + e.type + "]" : "") + " " + name;
}"""


def focused(page: Page) -> str:
    """The focused element in a few words (tag, id, type, name): for the path a test reports."""
    found: str = page.evaluate(_FOCUSED)
    return found


def tab_to(page: Page, selector: str, limit: int = 40, key: str = "Tab") -> list[str]:
    """Press Tab (or `key`, e.g. Shift+Tab) until the focused element matches `selector`; the path
    it took. Fails naming the path if it is not reached within `limit` presses."""
    path: list[str] = []
    for _ in range(limit):
        page.keyboard.press(key)
        path.append(focused(page))
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return path
    raise AssertionError(f"{selector} was not reached by {key} in {limit} presses; focus went: {path}")


# -- the focus ring -----------------------------------------------------------------------------------

_RING = """() => {
  const e = document.activeElement;
  const style = getComputedStyle(e);
  let bg = "rgba(0, 0, 0, 0)";
  for (let n = e.parentElement; n && n.nodeType === 1; n = n.parentElement) {  // the outline is drawn outside e
    const b = getComputedStyle(n).backgroundColor;
    if (!/rgba\\(.*, 0\\)$/.test(b) && b !== "transparent") { bg = b; break; }
  }
  if (bg === "rgba(0, 0, 0, 0)") { bg = "rgb(255, 255, 255)"; }
  return {style: style.outlineStyle, width: parseFloat(style.outlineWidth), color: style.outlineColor,
          shadow: style.boxShadow, around: bg, focusVisible: e.matches(":focus-visible")};
}"""


def focus_ring(page: Page) -> dict[str, Any]:
    """The focused element's outline (style, width in px, colour), its box-shadow, the colour of
    what is behind it (the nearest ancestor's background), and whether it matches :focus-visible."""
    ring: dict[str, Any] = page.evaluate(_RING)
    return ring


def _rgb(css: str) -> tuple[float, float, float]:
    found = re.findall(r"[\d.]+", css)
    assert len(found) >= 3, css
    r, g, b = (float(x) for x in found[:3])
    return r, g, b


def luminance(css: str) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in _rgb(css))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""
    a, b = sorted((luminance(first), luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)


# -- setting the scene through the JSON API ---------------------------------------------------------------

class Api:
    """A user logged in to the JSON API (POST /api/login), for the test to set the scene."""

    def __init__(self, browser: Browser, base_url: str, username: str) -> None:
        self.context = browser.new_context(base_url=base_url)
        self.request: APIRequestContext = self.context.request
        answer = self.request.post("/api/login", data={"username": username, "password": PASSWORD})
        assert answer.ok, answer.text()
        self.token = answer.json()["csrf_token"]

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.request.post(path, data=body or {}, headers={"X-CSRF-Token": self.token})
        assert answer.ok, f"POST {path}: {answer.status} {answer.text()}"
        return answer.json()

    def get(self, path: str) -> Any:
        answer = self.request.get(path)
        assert answer.ok, f"GET {path}: {answer.status} {answer.text()}"
        return answer.json()

    def close(self) -> None:
        self.context.close()


def send_enquiry(page: Page, alert_id: str, consent: str, agencies: tuple[str, ...],
                 purpose: str = "Is Ruby safe at home?") -> None:
    """Claim the alert, open an enquiry and send its requests, as a worker does (labels as shown)."""
    page.goto(f"/alerts/{alert_id}")
    page.locator("#claim").click()
    page.locator("#open-enquiry").click()
    page.get_by_label("Purpose: what the MASH needs to know, and why").fill(purpose)
    page.get_by_label(consent).check()
    for agency in agencies:
        page.get_by_label(agency).check()
    page.locator("#send-requests").click()
