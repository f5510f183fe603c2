"""`vault-registry plan FILE`: a statement run sent as one routing plan, verified by its receipt."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.test import Client

from directory import checkpoints
from directory.client import cli
from directory.client.errors import Tampered
from registry.services import vaults
from tests.directory.helpers import BASE, django_poster, pinned_keys
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def run(tmp_path, token, *argv, keys=True, poster=None):
    out, err = StringIO(), StringIO()
    base = ["--url", BASE, "--token", token]
    if keys:
        base += ["--keys", str(pinned_keys(tmp_path)[1])]
    code = cli.main([*base, *argv], poster=poster or django_poster(), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def run_file(tmp_path, issuer, provider, actor):
    numbers = [vaults.vault_allocate(actor=actor, provider=provider).number for _ in range(3)]
    checkpoints.publish()
    path = tmp_path / "run.txt"
    path.write_text("\n".join([*numbers, "FR12"]) + "\n")
    return path, numbers, make_token(issuer)[1]


def test_plan_is_sent_verified_and_written(tmp_path, run_file):
    path, numbers, token = run_file
    out_file = tmp_path / "plan.json"
    code, _out, err = run(tmp_path, token, "plan", str(path), "--out", str(out_file))
    assert code == 0, err
    plan = json.loads(out_file.read_bytes())
    assert sorted(plan["groups"][0]["numbers"]) == sorted(numbers)
    assert plan["unroutable"] == [{"number": "FR12", "reason": "invalid:invalid_length"}]
    assert "upload" in err and "download" in err
    assert "plan verified: 4 numbers placed as checkpoint" in err
    assert "no witness required" in err
    assert "4 asked, 3 routable to 1 providers, 1 unroutable" in err


def test_ndjson_plan_to_stdout(tmp_path, run_file):
    path, _numbers, token = run_file
    code, out, err = run(tmp_path, token, "plan", str(path), "--ndjson")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["type"] == "plan"
    assert {line["type"] for line in lines} == {"plan", "group", "unroutable"}


def test_a_changed_answer_is_refused(tmp_path, run_file):
    path, _numbers, token = run_file
    code, _out, err = run(tmp_path, token, "plan", str(path), poster=django_poster(tamper=True))
    assert code == Tampered.exit_code
    assert "differs from what its receipt signed" in err


def test_without_pinned_keys_the_plan_is_marked_unverified(tmp_path, run_file):
    path, _numbers, token = run_file
    code, _out, err = run(tmp_path, token, "plan", str(path), keys=False)
    assert code == 0
    assert "NOT verified" in err


def test_a_refused_plan_reports_the_registry_error(tmp_path, provider):
    path = tmp_path / "run.txt"
    path.write_text("FR12\n")
    code, _out, err = run(tmp_path, make_token(provider)[1], "plan", str(path), keys=False)
    assert code == 1
    assert "HTTP 403" in err


def test_over_real_http(live_server, tmp_path, issuer, provider, actor):
    # the standard-library poster, against a real server
    number = vaults.vault_allocate(actor=actor, provider=provider).number
    checkpoints.publish()
    path = tmp_path / "run.json"
    path.write_text(json.dumps([number]))
    keys = tmp_path / "keys.json"
    keys.write_text(Client().get("/.well-known/vault-registry").content.decode())
    out, err = StringIO(), StringIO()
    code = cli.main(
        [
            "--url",
            live_server.url,
            "--token",
            make_token(issuer)[1],
            "--keys",
            str(keys),
            "plan",
            str(path),
        ],
        out=out,
        err=err,
    )
    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue())["groups"][0]["numbers"] == [number]
