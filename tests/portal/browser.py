"""Playwright driving the system's Chromium (Debian's `chromium`; Playwright's own browser
download is not available here), axe-core for accessibility, screenshots on failure."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

AXE = Path(__file__).parent / "testdata" / "axe.min.js"  # axe-core 4.14.1 (MPL-2.0), vendored
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS") or Path(tempfile.gettempdir()) / "vr-browser")


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The browser, or a skip with the reason; in CI a missing browser is a failure."""
    found = chromium_path()
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true and no Chromium found: .ci/run installs the `chromium` package")
    pytest.skip("no Chromium found: `apt-get install chromium` to run the browser tests")


def axe_violations(page) -> list[dict]:
    """Serious and critical axe-core violations on the page as it is now."""
    page.add_script_tag(content=AXE.read_text())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def assert_accessible(page) -> None:
    violations = axe_violations(page)
    assert not violations, f"{page.url}: {violations}"


def current_code(username: str, confirmed: bool = True) -> str:
    """The code the person's authenticator app shows now."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user__username=username, confirmed=confirmed)
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def sign_in(page, base_url: str, username: str, password: str) -> None:
    """Sign in to the portal through its form (French labels), with the app's current code."""
    page.goto(f"{base_url}/portal/login/")
    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_label("Code de votre application", exact=False).fill(current_code(username))
    follow(page, page.get_by_role("button", name="Se connecter"))


def follow(page, target) -> None:
    """Click a link or a submit button and wait until the page it leads to has loaded, so that
    what comes next (assertions, axe) reads the new page, never the one being left."""
    with page.expect_navigation():
        target.click()
