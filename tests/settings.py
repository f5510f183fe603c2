"""Test settings: the production module, with a throwaway key and fast password hashing."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-0123456789-abcdefghijklmnop")

from registry.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests never serve static files; WhiteNoise would only warn that var/static is empty.
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("whitenoise")]  # noqa: F405
# Tests revoke and suspend, then expect the next request to be refused: no token cache, except
# in the test that checks the cache itself.
VAULT_TOKEN_CACHE_SECONDS = 0
# Rate-limit counters in process memory: lookups keep their pinned query counts. The database
# cache and Redis are tested on their own (tests/registry/test_limits.py).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS_URL = ""
