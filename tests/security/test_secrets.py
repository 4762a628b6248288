"""Stored secrets: Fernet tokens, a key file readable by its owner only, rotation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ctxbase.config import Settings
from ctxbase.errors import ConfigurationError
from ctxbase.secrets import Secrets, generate_key


def test_round_trip_with_a_configured_key() -> None:
    secrets = Secrets(Settings.from_values(secret_key=generate_key()))
    token = secrets.encrypt("hunter2")
    assert b"hunter2" not in token
    assert secrets.decrypt(token) == "hunter2"


def test_key_file_is_created_owner_only_on_first_secret(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "secret.key"
    secrets = Secrets(Settings.from_values(secret_key_file=str(key_file)))
    assert not key_file.exists()
    token = secrets.encrypt("s3cret")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = Secrets(Settings.from_values(secret_key_file=str(key_file)))
    assert again.decrypt(token) == "s3cret"


def test_reading_without_a_key_is_a_clear_error(tmp_path: Path) -> None:
    secrets = Secrets(Settings.from_values(secret_key_file=str(tmp_path / "absent.key")))
    with pytest.raises(ConfigurationError, match="No secret key"):
        secrets.decrypt(b"whatever")
    assert not (tmp_path / "absent.key").exists()


def test_wrong_key_and_malformed_key_are_clear_errors() -> None:
    token = Secrets(Settings.from_values(secret_key=generate_key())).encrypt("x")
    with pytest.raises(ConfigurationError, match="cannot be decrypted"):
        Secrets(Settings.from_values(secret_key=generate_key())).decrypt(token)
    with pytest.raises(ConfigurationError, match="not a Fernet key"):
        Secrets(Settings.from_values(secret_key="short")).encrypt("x")


def test_rotation_old_key_still_reads_and_rotate_moves_to_the_new_one() -> None:
    old, new = generate_key(), generate_key()
    token = Secrets(Settings.from_values(secret_key=old)).encrypt("value")
    both = Secrets(Settings.from_values(secret_key=f"{new},{old}"))
    assert both.decrypt(token) == "value"
    rotated = both.rotate(token)
    assert Secrets(Settings.from_values(secret_key=new)).decrypt(rotated) == "value"
    with pytest.raises(ConfigurationError):
        Secrets(Settings.from_values(secret_key=new)).decrypt(token)
