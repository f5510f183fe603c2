"""The deploy kit (deploy/): the nginx site passes `nginx -t`, its problem pages are problem
documents, gunicorn's limits match nginx's, and systemd holds the web server's socket."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from registry.errors import ErrorCode

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SITE = DEPLOY / "nginx" / "vault-registry.conf"
ERRORS = DEPLOY / "nginx" / "errors"


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry.example.org")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert, private = directory / "fullchain.pem", directory / "privkey.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, private


def render_site(tmp_path: Path) -> Path:
    """The site file inside a whole nginx.conf whose every path is under ``tmp_path``."""
    cert, key = self_signed(tmp_path)
    site = SITE.read_text()
    for placeholder, path in {
        "/etc/ssl/vault-registry/fullchain.pem": cert,
        "/etc/ssl/vault-registry/privkey.pem": key,
        "/var/cache/nginx/vault-registry": tmp_path / "cache",
        "/var/log/nginx/": f"{tmp_path}/",
        "/var/lib/vault-registry/static/": f"{tmp_path}/static/",
        "/opt/vault-registry/deploy/nginx/errors/": f"{ERRORS}/",
    }.items():
        assert str(placeholder) in site, placeholder
        site = site.replace(str(placeholder), str(path))
    (tmp_path / "site.conf").write_text(site)
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\n"
        "events {}\n"
        "http {\n"
        f"    access_log {tmp_path}/access.log;\n"
        f"    client_body_temp_path {temp['body']};\n"
        f"    proxy_temp_path {temp['proxy']};\n"
        f"    fastcgi_temp_path {temp['fastcgi']};\n"
        f"    uwsgi_temp_path {temp['uwsgi']};\n"
        f"    scgi_temp_path {temp['scgi']};\n"
        f"    include {tmp_path}/site.conf;\n"
        "}\n"
    )
    return conf


def nginx() -> str:
    path = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if path is None:
        pytest.skip("nginx is not installed")
    return path


def test_the_nginx_site_passes_nginx_t(tmp_path):
    binary = nginx()
    conf = render_site(tmp_path)
    result = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_every_error_page_of_the_site_is_a_problem_document():
    site = SITE.read_text()
    pages = dict(re.findall(r"error_page (\d+)(?: =\d+)? /\.problems/(\d+)\.json;", site))
    assert set(pages.values()) == {
        "400", "404", "411", "413", "414", "429", "431", "500", "502", "503", "504"
    }  # fmt: skip
    for name in pages.values():
        body = json.loads((ERRORS / f"{name}.json").read_text())
        assert body["status"] == int(name)
        assert body["code"] in set(ErrorCode)
        assert body["type"] == f"urn:vault-registry:problem:{body['code']}"
        assert body["title"] and body["detail"]
    assert "default_type application/problem+json;" in site


def setting(text: str, name: str) -> str:
    return re.search(rf"^\s*{name}\s+(.+?);?$", text, re.MULTILINE).group(1)


def test_gunicorn_limits_match_nginx_and_the_plan_body_limit():
    from registry import settings as production

    site = SITE.read_text()
    gunicorn = (DEPLOY / "gunicorn.conf.py").read_text()
    _count, size = setting(site, "large_client_header_buffers").split()
    assert size == "8k"
    for limit in ("limit_request_line", "limit_request_field_size"):
        assert int(re.search(rf"^{limit} = (\d+)", gunicorn, re.MULTILINE).group(1)) >= 8190
    assert setting(site, "client_max_body_size") == "8m"
    assert production.VAULT_PLAN_MAX_BODY == 8 * 1024 * 1024


def test_gunicorn_config_turns_the_shared_control_socket_off(monkeypatch):
    monkeypatch.delenv("GUNICORN_CONTROL_SOCKET", raising=False)
    values: dict = {}
    exec((DEPLOY / "gunicorn.conf.py").read_text(), values)
    assert values["control_socket_disable"] is True
    assert "control_socket" not in values
    monkeypatch.setenv("GUNICORN_CONTROL_SOCKET", "/run/vault-registry/gunicorn.ctl")
    values = {}
    exec((DEPLOY / "gunicorn.conf.py").read_text(), values)
    assert values["control_socket"] == "/run/vault-registry/gunicorn.ctl"
    assert values["control_socket_disable"] is False


def test_systemd_holds_the_web_server_socket():
    socket_unit = (DEPLOY / "systemd" / "vault-registry.socket").read_text()
    service = (DEPLOY / "systemd" / "vault-registry.service").read_text()
    listen = re.search(r"^ListenStream=(\S+)$", socket_unit, re.MULTILINE).group(1)
    assert f"server unix:{listen}" in SITE.read_text()
    assert "Requires=vault-registry.socket" in service
    assert "KillMode=mixed" in service
    assert "GUNICORN_BIND=fd://3" in service
    for timer in ("certificates", "checkpoint", "transfers", "usage", "webhooks", "peers"):
        assert (DEPLOY / "systemd" / f"vault-registry-{timer}.timer").exists()
