"""Security headers and the deployment check, with the production settings of
deploy/env.example."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ENV_EXAMPLE = Path(settings.BASE_DIR) / "deploy" / "env.example"


def _production_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            env[name.strip()] = value.strip()
    env.pop("SECRET_KEY_FILE", None)
    env["SECRET_KEY"] = "production-like-secret-key-" + "x" * 40
    env["DJANGO_SETTINGS_MODULE"] = "registry.settings"
    return env


def test_check_deploy_is_clean_with_the_production_settings():
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_https_redirects_and_sends_hsts(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    assert client.get("/check/")["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200  # load balancers probe over HTTP
    secure = client.get("/check/", secure=True)
    assert "max-age=31536000" in secure["Strict-Transport-Security"]


def test_the_favicon_is_served(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 301 and answer["Location"].endswith("favicon.svg")
