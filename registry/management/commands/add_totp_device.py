"""Give a federation admin a TOTP device and print it once, as a URI and a QR code."""

from __future__ import annotations

import io

import qrcode
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice


def draw_qr(data: str) -> str:
    """A QR code drawn with block characters, for a terminal."""
    code = qrcode.QRCode(border=1)
    code.add_data(data)
    drawing = io.StringIO()
    code.print_ascii(out=drawing, invert=True)
    return drawing.getvalue().rstrip("\n")


class Command(BaseCommand):
    help = "Create a confirmed TOTP device for a staff user and print its otpauth:// URI and QR."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="device name")

    def handle(self, *args, username: str, name: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not user.is_staff:
            raise CommandError(f"No staff user named {username!r}: createsuperuser first.")
        if TOTPDevice.objects.filter(user=user, name=name).exists():
            raise CommandError(f"{username} already has a device named {name!r}.")
        device = TOTPDevice.objects.create(user=user, name=name, confirmed=True)
        self.stdout.write(f"TOTP URI for {username}: {device.config_url}")
        self.stdout.write(draw_qr(device.config_url))
        self.stdout.write("Scan it now: it is not shown again.")
