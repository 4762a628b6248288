"""Declarations of the server and administration operations: health, projects, tenants,
keys, audit, embeddings, database configurations and migrations."""

from __future__ import annotations

import uuid
from typing import Any

from ctxbase.api import queries as q
from ctxbase.api.models import (
    ConfigPage,
    EmbeddingsStatus,
    Health,
    InitializeIn,
    MigrationIn,
    MigrationPage,
    MigrationResumeIn,
    Readiness,
    ReembedRequest,
    Statistics,
)
from ctxbase.api.spec import Arg, Operation, Wire
from ctxbase.records import (
    ApiKey,
    ApiKeyCreated,
    ApiKeyIn,
    AuditEntry,
    Page,
    Project,
    ProjectIn,
    ProjectPatch,
    Tenant,
    TenantIn,
    TenantPatch,
)
from ctxbase.store.databases import (
    DatabaseConfigIn,
    DatabaseConfigPatch,
    DatabaseConfigRecord,
    DatabaseTestReport,
    TableStatistics,
)
from ctxbase.transfer.report import MigrationReport

ID = uuid.UUID | str
#: The audit log names the caller; over HTTP the server fills it in from the key, so
#: clients never send it.
SERVER_ACTOR = Arg("actor", str, "server", "library")
CONFIG = Arg("ref", ID, wire_name="config_id")
PROJECT = Arg("slug", str, wire_name="project")
TENANT = Arg("slug", str, wire_name="tenant")


# A table, one operation per entry, wrapped by hand rather than by the formatter.
# fmt: off
ADMIN_OPERATIONS = (
    # --- health ---
    Operation("health", "GET", "/health", "public", "Health of the server and its database",
        result=Health, on="rest", custom_client=True),
    Operation("ready", "GET", "/ready", "public", "Whether the server can take traffic",
        result=Readiness, on="rest", custom_client=True),
    Operation("metrics", "GET", "/metrics", "server", "Prometheus metrics", result=str, on="rest",
        custom_client=True),
    # --- projects ---
    Operation("projects.create", "POST", "/projects", "admin", "Create a project", result=Project,
        body=ProjectIn, args=("slug",), status=201,
        example={"slug": "support", "name": "Support agents"}),
    Operation("projects.list", "GET", "/projects", "read", "List projects", result=Page[Project],
        query=q.PageQuery),
    Operation("projects.get", "GET", "/projects/{project}", "read", "Get a project",
        result=Project, args=(PROJECT,)),
    Operation("projects.update", "PATCH", "/projects/{project}", "admin",
        "Rename or reconfigure a project", result=Project, body=ProjectPatch, args=(PROJECT,),
        example={"name": "Support and billing agents"}),
    Operation("projects.delete", "DELETE", "/projects/{project}", "admin",
        "Delete a project and all it holds", args=(PROJECT,), status=204),
    # --- tenants, keys, audit ---
    Operation("tenants.create", "POST", "/tenants", "server", "Create a tenant", result=Tenant,
        body=TenantIn, args=("slug",), extra=(SERVER_ACTOR,), status=201,
        example={"slug": "acme", "name": "Acme Inc.", "plan": "team",
                 "quotas": {"projects": 10, "agents": 25}, "settings": {"region": "eu"}}),
    Operation("tenants.list", "GET", "/tenants", "server", "List tenants", result=Page[Tenant],
        query=q.PageQuery),
    Operation("tenants.get", "GET", "/tenants/{tenant}", "admin", "Get a tenant", result=Tenant,
        args=(TENANT,)),
    Operation("tenants.update", "PATCH", "/tenants/{tenant}", "server",
        "Change a tenant's name, plan, quotas or settings; `is_active: false` deactivates it",
        result=Tenant,
        body=TenantPatch, args=(TENANT,), extra=(SERVER_ACTOR,),
        example={"plan": "business", "quotas": {"requests_per_minute": 12000}}),
    Operation("tenants.usage", "GET", "/tenants/{tenant}/usage", "admin",
        "What a tenant stores, against its quotas", result=dict[str, int], args=(TENANT,)),
    Operation("keys.create", "POST", "/keys", "admin",
        "Create an API key; the response holds the key, shown this once", result=ApiKeyCreated,
        body=ApiKeyIn, extra=(SERVER_ACTOR,), status=201,
        example={"role": "writer", "name": "support bot", "projects": ["support"],
                 "scopes": ["memories:*", "search:read"], "expires_in_days": 90}),
    Operation("keys.list", "GET", "/keys", "admin", "List API keys (prefixes only)",
        result=Page[ApiKey], query=q.KeyQuery),
    # The library returns the revoked key; over HTTP a deletion answers 204 with no body.
    Operation("keys.revoke", "DELETE", "/keys/{key_id}", "admin", "Revoke an API key at once",
        result=ApiKey, args=(Arg("key_id", ID),), extra=(SERVER_ACTOR,), status=204),
    Operation("audit.list", "GET", "/audit", "admin", "Administrative actions, newest first",
        result=Page[AuditEntry], query=q.AuditQuery),
    # --- embeddings: the active model is the server's ---
    Operation("embeddings.status", "GET", "/embeddings", "read", "Active model and backlog",
        result=EmbeddingsStatus, on="rest"),
    Operation("embeddings.start_reembed", "POST", "/embeddings/reembed", "server",
        "Start re-embedding with another model (searches keep working); answers the job, "
        "followed at `/jobs/{id}`", result=dict[str, Any],
        body=ReembedRequest, args=("model",), status=202, on="rest",
        example={"model": "openai:text-embedding-3-small", "drop_old": False}),
    Operation("embeddings.reembed_status", "GET", "/embeddings/reembed", "server",
        "Progress of the last re-embedding job", result=dict[str, Any] | None),
    # --- database configurations ---
    Operation("databases.list", "GET", "/database-configs", "server", "List registered databases",
        result=list[DatabaseConfigRecord], wire=Wire(ConfigPage)),
    Operation("databases.add", "POST", "/database-configs", "server", "Register a database",
        result=DatabaseConfigRecord, body=DatabaseConfigIn, status=201,
        example={"name": "production", "kind": "postgresql", "host": "db.internal",
                 "database": "ctxbase", "username": "ctxbase"}),
    Operation("databases.get", "GET", "/database-configs/{config_id}", "server",
        "Get a database configuration", result=DatabaseConfigRecord, args=(CONFIG,)),
    Operation("databases.update", "PATCH", "/database-configs/{config_id}", "server",
        "Change a database configuration's fields", result=DatabaseConfigRecord,
        body=DatabaseConfigPatch, args=(CONFIG,),
        example={"pool_size": 20, "sslmode": "require"}),
    Operation("databases.delete", "DELETE", "/database-configs/{config_id}", "server",
        "Forget a database configuration (the data is untouched)", args=(CONFIG,), status=204),
    Operation("databases.test", "POST", "/database-configs/{config_id}/test", "server",
        "Test the connection", result=DatabaseTestReport, args=(CONFIG,)),
    Operation("databases.initialize", "POST", "/database-configs/{config_id}/initialize", "server",
        "Bring the schema to head", result=DatabaseTestReport, body=InitializeIn, args=(CONFIG,),
        example={"require_pgvector": True}),
    Operation("databases.statistics", "GET", "/database-configs/{config_id}/statistics", "server",
        "Rows and bytes per table", result=list[TableStatistics], args=(CONFIG,),
        wire=Wire(Statistics, "tables")),
    Operation("databases.activate", "POST", "/database-configs/{config_id}/activate", "server",
        "Serve this database from now on (also after a restart)", result=DatabaseConfigRecord,
        args=(CONFIG,), on="rest"),
    # --- jobs: migrations and re-embedding, recorded in the server's home database ---
    Operation("jobs.list", "GET", "/jobs", "server",
        "Migration and re-embedding jobs, newest first (also those of earlier runs)",
        result=Page[MigrationReport], query=q.JobQuery),
    Operation("jobs.get", "GET", "/jobs/{job_id}", "server", "A job's status and progress",
        result=MigrationReport, args=(Arg("job_id", ID),)),
    Operation("jobs.stream", "GET", "/jobs/{job_id}/stream", "server",
        "A job's progress as server-sent events until it ends", result=Any,
        args=(Arg("job_id", ID),), on="rest", custom_client=True),
    # --- migrations: jobs of the server ---
    Operation("migrations.list", "GET", "/migrations", "server",
        "Migration jobs, newest first (the latest 1000; page with `/jobs?kind=migration`)",
        result=list[MigrationReport], wire=Wire(MigrationPage), on="rest"),
    Operation("migrations.start", "POST", "/migrations", "server",
        "Start copying data between two databases", result=MigrationReport, body=MigrationIn,
        status=202, on="rest",
        example={"source": {"config": "development"}, "target": {"config": "production"}}),
    Operation("migrations.get", "GET", "/migrations/{job_id}", "server", "Status and progress",
        result=MigrationReport, args=(Arg("job_id", ID),), on="rest"),
    Operation("migrations.cancel", "POST", "/migrations/{job_id}/cancel", "server", "Cancel a job",
        result=MigrationReport, args=(Arg("job_id", ID),), status=202, on="rest"),
    Operation("migrations.resume", "POST", "/migrations/{job_id}/resume", "server",
        "Resume a cancelled, failed or interrupted job after its last committed batch (same "
        "id); 409 when it finished or runs", result=MigrationReport, body=MigrationResumeIn,
        args=(Arg("job_id", ID),), status=202, on="rest"),
    Operation("migrations.stream", "GET", "/migrations/{job_id}/stream", "server",
        "Progress as server-sent events until the job ends", result=Any, args=(Arg("job_id", ID),),
        on="rest", custom_client=True),
)
# fmt: on
