"""Webhooks are only sent to public addresses, within a total time, in parallel per provider,
and a failed run gives its messages back at once (issue 12). Real HTTPS receivers on 127.0.0.1,
allowed by VAULT_WEBHOOK_ALLOW_PRIVATE as in a closed network."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from registry import destinations
from registry.models import DeliveryState, Message, Webhook
from registry.services import messages, transfers, webhooks
from registry.services.common import Actor
from tests.factories import VaultFactory
from tests.registry.helpers import assert_problem

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
WEBHOOK = "/api/v1/provider/webhook"
HOSTS = ["hooks.test.example", "slow.test.example", "fast.test.example"]


# --- The address rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        "2001:db8::1",
    ],
)
def test_addresses_that_are_not_public_are_refused(address):
    assert not destinations.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_accepted(address):
    assert destinations.is_public(ipaddress.ip_address(address))


def resolving_to(monkeypatch, *addresses: str) -> None:
    monkeypatch.setattr(destinations, "resolve", lambda host, port: list(addresses))


@pytest.mark.parametrize(
    ("url", "resolved", "code"),
    [
        ("https://127.0.0.1/hook", (), "address_not_public"),
        ("https://169.254.169.254/latest/meta-data", (), "address_not_public"),
        ("https://[::1]:8443/hook", (), "address_not_public"),
        ("https://[::ffff:10.0.0.1]/hook", (), "address_not_public"),
        ("https://hooks.provider.example/", ("10.0.0.5",), "address_not_public"),
        ("https://hooks.provider.example/", ("93.184.215.14", "fe80::1"), "address_not_public"),
        ("https://hooks.provider.example/", (), "unresolvable_host"),
        ("https://user:secret@hooks.provider.example/", ("93.184.215.14",), "credentials_in_url"),
        ("https://token@hooks.provider.example/", ("93.184.215.14",), "credentials_in_url"),
    ],
)
def test_registration_refuses_what_is_not_a_public_destination(
    url, resolved, code, provider_client, monkeypatch
):
    resolving_to(monkeypatch, *resolved)
    response = provider_client.post(WEBHOOK, {"url": url}, format="json")
    body = assert_problem(response, 400, "validation_error")
    assert body["errors"][0]["field"] == "url"
    assert body["errors"][0]["code"] == code
    assert not Webhook.objects.exists()


def test_a_name_that_does_not_resolve_is_refused(provider, monkeypatch):
    def fail(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(destinations, "resolve", fail)
    with pytest.raises(destinations.RefusedDestination) as refused:
        destinations.check("https://nowhere.example/")
    assert refused.value.code == "unresolvable_host"


def test_private_addresses_may_be_allowed_for_closed_networks(provider_client, settings):
    settings.VAULT_WEBHOOK_ALLOW_PRIVATE = True
    response = provider_client.post(WEBHOOK, {"url": "https://10.0.0.5/hook"}, format="json")
    assert response.status_code == 201
    # credentials stay refused
    response = provider_client.post(WEBHOOK, {"url": "https://u:p@10.0.0.5/"}, format="json")
    assert response.json()["errors"][0]["code"] == "credentials_in_url"


# --- Real receivers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for the test host names and 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "webhook receiver")])
    now = datetime.now(UTC)
    certificate = (
        cx509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            cx509.SubjectAlternativeName(
                [cx509.DNSName(h) for h in HOSTS]
                + [cx509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(cx509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return directory / "cert.pem", directory / "key.pem"


class Receiver:
    """An HTTPS server on 127.0.0.1 in a thread; ``respond(handler)`` answers each request."""

    def __init__(self, tls_files, respond):
        cert, key = tls_files
        receiver = self
        self.requests: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                receiver.requests.append(
                    {
                        "host": self.headers["Host"],
                        "path": self.path,
                        "body": self.rfile.read(length),
                    }
                )
                respond(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def ok(handler):
    handler.send_response(204)
    handler.end_headers()


@pytest.fixture
def receivers(tls_files, settings, monkeypatch):
    """Start receivers; test host names resolve to 127.0.0.1, which the settings allow."""
    settings.VAULT_WEBHOOK_ALLOW_PRIVATE = True
    settings.WEBHOOK_CA_FILE = str(tls_files[0])
    resolving_to(monkeypatch, "127.0.0.1")
    started = []

    def start(respond=ok) -> Receiver:
        started.append(Receiver(tls_files, respond))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


def queue_message(provider) -> Message:
    """A message to ``provider``, queued by a service (a transfer code issued for a holder)."""
    vault = VaultFactory(provider=provider)
    transfers.transfer_code_issue(actor=SYSTEM, provider=provider, vault=vault)
    return Message.objects.filter(provider=provider).latest("id")


def test_delivery_connects_to_the_checked_address_and_names_the_host(receivers, provider):
    receiver = receivers()
    messages.webhook_register(
        actor=SYSTEM, provider=provider, url=f"https://hooks.test.example:{receiver.port}/in?x=1"
    )
    message = queue_message(provider)

    report = webhooks.deliver_webhooks()

    assert report.delivered == 1
    message.refresh_from_db()
    assert message.delivery_state == DeliveryState.DELIVERED
    # the name only resolves through the check, which the connection used; TLS verified it
    assert receiver.requests[0]["host"] == f"hooks.test.example:{receiver.port}"
    assert receiver.requests[0]["path"] == "/in?x=1"


def test_delivery_checks_the_address_again(receivers, provider, settings, monkeypatch):
    # given a webhook registered while its name resolved to a public address
    receiver = receivers()
    resolving_to(monkeypatch, "93.184.215.14")
    settings.VAULT_WEBHOOK_ALLOW_PRIVATE = False
    messages.webhook_register(
        actor=SYSTEM, provider=provider, url=f"https://hooks.test.example:{receiver.port}/"
    )
    message = queue_message(provider)
    # when the name now resolves to loopback (DNS rebinding)
    resolving_to(monkeypatch, "127.0.0.1")

    report = webhooks.deliver_webhooks()

    # then nothing is sent there
    assert (report.delivered, report.failed) == (0, 1)
    message.refresh_from_db()
    assert "address_not_public" in message.last_delivery_error
    assert receiver.requests == []


def test_a_receiver_trickling_its_answer_is_cut_at_the_total_time_limit(
    receivers, provider, settings
):
    stop = threading.Event()

    def trickle(handler):
        # one byte of the status line at a time, each well within a per-read timeout
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
            if stop.wait(0.2):
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()

    receiver = receivers(trickle)
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    messages.webhook_register(
        actor=SYSTEM, provider=provider, url=f"https://hooks.test.example:{receiver.port}/"
    )
    message = queue_message(provider)
    try:
        report = webhooks.deliver_webhooks()
    finally:
        stop.set()
    assert report.failed == 1
    message.refresh_from_db()
    assert message.last_delivery_error == "TimeoutError: no answer within 1 s"
    assert message.delivery_state == DeliveryState.PENDING


def test_a_slow_receiver_does_not_hold_up_another_providers(
    receivers, provider, other_provider, settings
):
    fast_done = threading.Event()
    seen = {}

    def slow(handler):
        # answers once the other provider's receiver got its message, or gives up
        seen["fast_first"] = fast_done.wait(20)
        ok(handler)

    def fast(handler):
        ok(handler)
        fast_done.set()

    settings.WEBHOOK_TIMEOUT_SECONDS = 30
    slow_receiver, fast_receiver = receivers(slow), receivers(fast)
    messages.webhook_register(
        actor=SYSTEM, provider=provider, url=f"https://slow.test.example:{slow_receiver.port}/"
    )
    messages.webhook_register(
        actor=SYSTEM,
        provider=other_provider,
        url=f"https://fast.test.example:{fast_receiver.port}/",
    )
    slow_message = queue_message(provider)  # older: sent first by a sequential worker
    queue_message(other_provider)

    report = webhooks.deliver_webhooks()

    assert report.delivered == 2
    assert seen["fast_first"] is True
    assert Message.objects.get(pk=slow_message.pk).delivery_state == DeliveryState.DELIVERED


class Recording:
    """An injected sender answering per URL, recording the message ids in the order sent."""

    def __init__(self, answers: dict[str, int]):
        self.answers = answers
        self.sent: list[tuple[str, str]] = []

    def __call__(self, url, body, headers, timeout):
        self.sent.append((url, headers["webhook-id"]))
        return self.answers[url]


def test_messages_behind_a_failed_one_wait_for_its_retry(clock, provider):
    messages.webhook_register(actor=SYSTEM, provider=provider, url="https://a.example/")
    first, second = queue_message(provider), queue_message(provider)

    sender = Recording({"https://a.example/": 503})
    report = webhooks.deliver_webhooks(sender=sender)

    assert (report.failed, report.deferred) == (1, 1)
    assert sender.sent == [("https://a.example/", str(first.pk))]
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.delivery_attempts == 0
    assert second.next_delivery_at == first.next_delivery_at == clock.now + timedelta(seconds=30)

    clock.advance(seconds=30)
    sender = Recording({"https://a.example/": 200})
    assert webhooks.deliver_webhooks(sender=sender).delivered == 2
    assert [message_id for _url, message_id in sender.sent] == [str(first.pk), str(second.pk)]


def test_a_failed_run_gives_its_messages_back_at_once(clock, provider, other_provider):
    messages.webhook_register(actor=SYSTEM, provider=provider, url="https://a.example/")
    message = queue_message(provider)

    def crash(url, body, headers, timeout):
        raise RuntimeError("worker bug")

    with pytest.raises(RuntimeError, match="worker bug"):
        webhooks.deliver_webhooks(sender=crash)

    message.refresh_from_db()
    assert (message.next_delivery_at, message.delivery_attempts) == (clock.now, 0)
    assert webhooks.deliver_webhooks(sender=Recording({"https://a.example/": 200})).delivered == 1


def test_a_claim_is_leased_for_the_lease_setting(clock, provider, settings):
    settings.WEBHOOK_LEASE_SECONDS = 45
    messages.webhook_register(actor=SYSTEM, provider=provider, url="https://a.example/")
    message = queue_message(provider)
    assert webhooks.webhook_claim_due(now=clock.now) == [message.pk]
    message.refresh_from_db()
    assert message.next_delivery_at == clock.now + timedelta(seconds=45)
    assert webhooks.webhook_claim_due(now=clock.now) == []


def test_the_real_sender_refuses_credentials_and_private_addresses():
    with pytest.raises(destinations.RefusedDestination, match="credentials_in_url"):
        webhooks.http_sender("https://u:p@hooks.example/", b"{}", {}, 1.0)
    with pytest.raises(destinations.RefusedDestination, match="address_not_public"):
        webhooks.http_sender("https://169.254.169.254/", b"{}", {}, 1.0)
