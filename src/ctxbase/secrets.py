"""Secrets at rest: webhook secrets and database passwords are stored as Fernet tokens.

The key comes from the ``secret_key`` setting (``CTXBASE_SECRET_KEY``; several keys
separated by commas, the first one encrypting, all of them decrypting, so a key can be
rotated without a moment where stored tokens are unreadable) or else from the file named by
``secret_key_file``, created with mode 0600 the first time a secret is stored.

A secret never leaves this module except to the code that must use it (to sign a webhook,
to connect to a database); nothing here logs or prints one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ctxbase.config import Settings
from ctxbase.errors import ConfigurationError


class Secrets:
    """Encrypts and decrypts stored secrets with the configured key(s)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._fernet: MultiFernet | None = None
        self._lock = threading.Lock()

    def encrypt(self, secret: str) -> bytes:
        return self._keys(create=True).encrypt(secret.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._keys(create=False).decrypt(bytes(token)).decode()
        except InvalidToken:
            raise ConfigurationError(
                "A stored secret cannot be decrypted with the configured key",
                hint="set CTXBASE_SECRET_KEY (or secret_key_file) to the key it was stored with",
            ) from None

    def rotate(self, token: bytes) -> bytes:
        """``token`` re-encrypted with the first key (it may have been made with any)."""
        try:
            return self._keys(create=False).rotate(bytes(token))
        except InvalidToken:
            raise ConfigurationError(
                "A stored secret cannot be decrypted with the configured keys"
            ) from None

    def _keys(self, *, create: bool) -> MultiFernet:
        with self._lock:
            if self._fernet is None:
                self._fernet = MultiFernet([Fernet(k) for k in self._load(create=create)])
            return self._fernet

    def _load(self, *, create: bool) -> list[bytes]:
        configured = self._settings.secret_key
        if configured is not None:
            keys = [k.strip().encode() for k in configured.get_secret_value().split(",")]
        else:
            path = Path(self._settings.secret_key_file).expanduser()
            if not path.exists():
                if not create:
                    raise ConfigurationError(
                        "No secret key: stored secrets cannot be read",
                        hint=f"set CTXBASE_SECRET_KEY or restore {path}",
                    )
                write_key_file(path, Fernet.generate_key())
            keys = [k.strip().encode() for k in path.read_text().split(",")]
        keys = [k for k in keys if k]
        if not keys:
            raise ConfigurationError("The secret key setting is empty")
        try:
            for key in keys:
                Fernet(key)  # raises on a malformed key
        except ValueError:
            raise ConfigurationError(
                "The secret key is not a Fernet key (32 url-safe base64-encoded bytes)",
                hint="generate one with `ctxbase secrets generate-key`",
            ) from None
        return keys


def write_key_file(path: Path, key: bytes) -> None:
    """Write ``key`` to ``path`` readable by its owner only (created 0600, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key)
    os.chmod(path, 0o600)


def generate_key() -> str:
    return Fernet.generate_key().decode()
