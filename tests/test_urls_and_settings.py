import pytest

import ctxbase
from ctxbase.config import Settings
from ctxbase.db.urls import mask_url, parse_database_url
from ctxbase.errors import ConfigurationError


@pytest.mark.parametrize("raw", ["memory://", "sqlite://", "sqlite:///:memory:", " sqlite:// "])
def test_in_memory_forms(raw: str) -> None:
    url = parse_database_url(raw)
    assert (url.backend, url.in_memory, url.sqlite_path) == ("sqlite", True, None)


def test_sqlite_file() -> None:
    url = parse_database_url("sqlite:///./data/agents.db")
    assert (url.backend, url.in_memory, url.sqlite_path) == ("sqlite", False, "./data/agents.db")


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://u:pw@h:5433/db",
        "postgres://u:pw@h:5433/db",
        "postgresql+psycopg://u:pw@h:5433/db",
    ],
)
def test_postgres_urls_are_normalised_to_psycopg3(raw: str) -> None:
    url = parse_database_url(raw)
    assert url.backend == "postgresql"
    assert url.url.drivername == "postgresql+psycopg"
    assert (url.url.host, url.url.port, url.url.database) == ("h", 5433, "db")


@pytest.mark.parametrize("raw", ["mysql://u@h/db", "nonsense", "postgresql://u@h"])
def test_unusable_urls_are_configuration_errors(raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_database_url(raw)
    assert caught.value.hint


def test_password_is_masked_everywhere() -> None:
    url = parse_database_url("postgresql://alice:s3cr3t@db.example:5432/prod")
    for text in (url.masked(), str(url), repr(url)):
        assert "s3cr3t" not in text
        assert "alice:***@" in text


def test_mask_url_inside_free_text() -> None:
    text = "failed: postgresql://bob:p%40ss@host/db and sqlite:///x.db"
    assert mask_url(text) == "failed: postgresql://bob:***@host/db and sqlite:///x.db"
    assert mask_url("postgresql://nopassword@host/db") == "postgresql://nopassword@host/db"


def test_settings_read_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTXBASE_DATABASE_URL", "postgresql://u:topsecret@h/db")
    monkeypatch.setenv("CTXBASE_POOL_SIZE", "7")
    settings = Settings()
    assert settings.pool_size == 7
    assert "topsecret" not in repr(settings)


def test_settings_read_dotenv(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("CTXBASE_SQLITE_BUSY_TIMEOUT_MS=1234\n")
    monkeypatch.chdir(tmp_path)
    assert Settings().sqlite_busy_timeout_ms == 1234


def test_from_values_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTXBASE_DATABASE_URL", "postgresql://u@h/db")
    assert Settings.from_values().database_url == "sqlite:///./ctxbase.db"
    assert Settings.from_values(pool_size=3).pool_size == 3


def test_options_beside_settings_are_checked_as_alone() -> None:
    base = Settings.from_values(database_url="sqlite://", pool_size=3)
    with pytest.raises(ctxbase.InvalidInputError) as error:
        ctxbase.open(settings=base, pool_sise=10)
    assert "pool_sise" in str(error.value)
    with pytest.raises(ctxbase.InvalidInputError) as error:
        ctxbase.open(settings=base, pool_size="many")
    assert "pool_size" in str(error.value)
    with ctxbase.open(settings=base, embedder="hash:64", auto_migrate=True) as store:
        assert store.settings.pool_size == 3 and store.settings.embedder == "hash:64"


def test_an_unknown_store_option_is_refused_by_name() -> None:
    with pytest.raises(ctxbase.InvalidInputError) as error:
        ctxbase.open("sqlite://", pool_sise=10)
    assert "pool_sise" in str(error.value)
