"""Alembic environment of ctxbase.

Run only through :mod:`ctxbase.db.migrate`, which hands over an open connection in
``config.attributes["connection"]`` (ctxbase has no alembic.ini).
"""

from alembic import context

from ctxbase.db.backends import backend_class
from ctxbase.db.migrate import CONTEXT_OPTIONS
from ctxbase.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=backend_class(connection.dialect.name).rebuilds_tables_to_alter,
    **CONTEXT_OPTIONS,
)
with context.begin_transaction():
    context.run_migrations()
