"""Settings of ctxbase.

``Settings()`` reads the environment (``CTXBASE_`` prefix) and a ``.env`` file; it is
called only at the edges, by the CLI and the server. Library code builds settings from
explicit values with :meth:`Settings.from_values`, which never looks at the environment.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ctxbase.db.urls import mask_url

DEFAULT_DATABASE_URL = "sqlite:///./ctxbase.db"
DEFAULT_PORT = 8420
EmbeddableKind = Literal["message", "context", "memory"]
EMBEDDABLE_KINDS: tuple[EmbeddableKind, ...] = ("message", "context", "memory")


class Settings(BaseSettings):
    """Every setting of ctxbase; each maps to ``CTXBASE_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="CTXBASE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Database
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLite file, `sqlite://` or `memory://` (in-memory), or PostgreSQL URL.",
    )
    database_echo: bool = Field(False, description="Log every SQL statement (passwords masked).")
    auto_migrate: bool = Field(True, description="Bring the schema to head on first open.")
    pool_size: int = Field(
        5, ge=1, description="Connections kept open (PostgreSQL: for reads and for writes, each)."
    )
    max_overflow: int = Field(10, ge=0, description="PostgreSQL: extra connections under load.")
    pool_timeout: float = Field(30.0, gt=0, description="Seconds to wait for a free connection.")
    pool_recycle: int = Field(1800, description="Seconds after which a connection is renewed.")
    pool_pre_ping: bool = Field(
        True, description="Check a pooled connection that sat idle before handing it out."
    )
    pool_pre_ping_idle_seconds: float = Field(
        5.0, ge=0, description="Idle time after which pre-ping checks a connection (0: always)."
    )
    sqlite_busy_timeout_ms: int = Field(
        30000, ge=0, description="SQLite: how long a writer waits for another writer's lock."
    )

    # Embeddings
    embedder: str = Field(
        "local:all-MiniLM-L6-v2",
        description="local[:MODEL], openai:MODEL, hash[:DIMENSIONS] or none.",
    )
    embedder_base_url: str | None = Field(
        None, description="openai: base URL of the embeddings API (default OpenAI's)."
    )
    embedder_api_key: SecretStr | None = Field(None, description="openai: the API key.")
    embedder_dimensions: int | None = Field(
        None, gt=0, description="openai: ask the model for vectors of this length."
    )
    embedder_batch_size: int = Field(64, gt=0, description="Texts per embedding request.")
    embedder_timeout: float = Field(30.0, gt=0, description="openai: seconds per request.")
    embedder_max_retries: int = Field(4, ge=0, description="openai: retries with backoff.")
    embed_worker_interval: float = Field(
        30.0, ge=0, description="Server: seconds between backlog runs of pending vectors (0: off)."
    )
    embed_on_write: Annotated[list[EmbeddableKind], NoDecode] = Field(
        default_factory=lambda: list(EMBEDDABLE_KINDS),
        description="Kinds embedded when written (comma-separated in the environment).",
    )

    embed_message_context: int = Field(
        2,
        ge=0,
        le=20,
        description="Messages: earlier turns of the conversation embedded with each message, "
        "each as `speaker: content` (0: the content alone).",
    )

    # Search
    search_threshold: float = Field(
        0.7, description="Least similarity a vector-mode hit needs (cosine unless told)."
    )
    hybrid_rrf_k: int = Field(10, gt=0, description="Rank fusion constant: 1 / (k + rank).")
    hybrid_vector_weight: float = Field(1.0, ge=0, description="Weight of the vector ranking.")
    hybrid_text_weight: float = Field(1.0, ge=0, description="Weight of the full-text ranking.")
    hybrid_exact_weight: float = Field(
        1.0,
        ge=0,
        description="Hybrid: bonus, as for a first rank, for hits containing an identifier of "
        "the query verbatim (a token with digits, _ or camelCase, e.g. E4471).",
    )
    memory_importance_weight: float = Field(
        0.3, ge=0, description="Memory hits: score x (1 + w x importance + …)."
    )
    memory_recency_weight: float = Field(
        0.1, ge=0, description="Memory hits: boost for recent memories (halves every half-life)."
    )
    memory_recency_half_life_days: float = Field(
        30.0, gt=0, description="Memory hits: age at which the recency boost halves."
    )
    memory_access_weight: float = Field(
        0.1, ge=0, description="Memory hits: boost growing with log(access count), full at 100."
    )
    vector_index: Literal["hnsw", "ivfflat"] = Field(
        "hnsw", description="PostgreSQL: pgvector index type."
    )
    hnsw_m: int = Field(16, gt=1, description="HNSW (pgvector and SQLite): links per node.")
    hnsw_ef_construction: int = Field(64, gt=0, description="HNSW: build effort.")
    hnsw_ef_search: int = Field(100, gt=0, description="HNSW: search effort.")
    sqlite_hnsw_min_vectors: int = Field(
        20_000,
        ge=0,
        description="SQLite: vectors of one model and kind from which an HNSW index is used "
        "(0: always exact).",
    )
    ivfflat_lists: int = Field(100, gt=0, description="PostgreSQL IVFFlat: lists.")
    ivfflat_probes: int = Field(10, gt=0, description="PostgreSQL IVFFlat: lists probed.")

    # Events and delivery
    events_poll_interval: float = Field(
        1.0, gt=0, description="Seconds between re-reads of a stream by live waiters."
    )
    subscription_threshold: float = Field(
        0.35, ge=-1, le=1, description="Least similarity of a subscription's need and an event."
    )
    delivery_worker: bool = Field(True, description="Server: run the delivery worker inside.")
    delivery_max_attempts: int = Field(
        8, ge=1, description="Attempts at delivering an event before it goes to dead letters."
    )
    delivery_backoff_seconds: float = Field(
        1.0, gt=0, description="Wait after the first failed attempt; doubles after each."
    )
    delivery_backoff_max_seconds: float = Field(
        300.0, gt=0, description="Longest wait between two attempts."
    )
    delivery_lease_seconds: float = Field(
        30.0, gt=0, description="How long a worker owns a subscription without renewing."
    )
    webhook_timeout: float = Field(10.0, gt=0, description="Seconds a webhook receiver has.")
    redis_url: str = Field(
        "redis://localhost:6379/0", description="Redis server of `redis` deliveries."
    )

    # Limits: over them, writes fail with PayloadTooLargeError (HTTP 413) and write nothing.
    max_content_bytes: int = Field(
        1_048_576, gt=0, description="Largest message, context or memory text (UTF-8 bytes)."
    )
    max_metadata_bytes: int = Field(
        65_536, gt=0, description="Largest JSON metadata or state value (compact JSON bytes)."
    )
    max_batch_size: int = Field(1000, gt=0, description="Most items in one batch write.")
    max_request_bytes: int = Field(
        16_777_216, gt=0, description="Largest HTTP request body the server accepts."
    )

    # Secrets
    secret_key: SecretStr | None = Field(
        None,
        description="Fernet key(s) encrypting stored secrets; comma-separated to rotate (the "
        "first encrypts). Unset: the key file is used.",
    )
    secret_key_file: str = Field(
        "ctxbase.key",
        description="Key file used when `secret_key` is unset; created with mode 0600 when "
        "the first secret is stored.",
    )

    # Backup
    pg_bin_dir: str | None = Field(
        None,
        description="Directory holding `pg_dump` and `pg_restore` for PostgreSQL backups "
        "(default: those on PATH; they must be at least as new as the server).",
    )

    # Access
    auth: Literal["required", "disabled"] = Field(
        "required",
        description="`disabled`: no keys, every request is the operator's admin (loopback only).",
    )
    rate_limit_per_minute: int = Field(
        120_000,
        ge=1,
        description="Requests a minute per key and server process, unless its tenant's quota"
        " says; above what one process serves, so it stops only runaway clients.",
    )
    auth_failures_per_minute: int = Field(
        20, ge=1, description="Failed authentications a minute before a client is refused."
    )

    # Server
    host: str = Field("127.0.0.1", description="Address `ctxbase serve` binds to.")
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="Port `ctxbase serve` binds to.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Server log level."
    )
    console_session_minutes: int = Field(
        480,
        ge=1,
        le=60 * 24 * 30,
        description="How long a console sign-in lasts (never longer than its key).",
    )

    # MCP
    mcp_enabled: bool = Field(
        True, description="Server: serve MCP (streamable HTTP) at `/mcp` when `mcp` is installed."
    )
    mcp_project: str = Field(
        "default",
        description="MCP: the project tools act in, unless the key is limited to one project "
        "or the client sends `X-Ctxbase-Project`.",
    )
    mcp_api_key: SecretStr | None = Field(
        None,
        description="`ctxbase mcp` (stdio): act as this API key (its role, projects and "
        "scopes); unset: with the local library's full access.",
    )
    mcp_tool_notes: dict[str, str] = Field(
        default_factory=dict,
        description='MCP: text appended to tool descriptions, by tool name (`"*"`: every '
        'tool), as JSON, e.g. `{"recall": "Call it before every answer."}`.',
    )

    @field_validator("embed_on_write", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def from_values(cls, **values: Any) -> Settings:
        """Settings from explicit values and defaults only: the environment is not read.
        An unknown or invalid option is an InvalidInputError naming it."""
        from pydantic import ValidationError

        from ctxbase.store.base import invalid_input

        try:
            return _ExplicitSettings(**values)
        except ValidationError as e:
            raise invalid_input(e.errors()) from None

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "database_url" else value


class _ExplicitSettings(Settings):
    """Settings whose only source is the values given to the constructor; a name that is
    not a setting is refused (the environment may hold others, an explicit call may not)."""

    model_config = SettingsConfigDict(extra="forbid")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


__all__ = ["DEFAULT_DATABASE_URL", "DEFAULT_PORT", "Settings"]
