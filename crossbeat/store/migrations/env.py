"""Alembic environment: runs migrations on the connection CrossBeat hands it."""

from alembic import context

from crossbeat.store.schema import metadata

# The packages above the store define their own tables on the same metadata; the
# migration environment is the one place that needs them all (the store itself never
# imports the packages built on it).
for _module in ("auth", "audit", "sharing", "vault"):
    __import__(f"crossbeat.{_module}.tables")

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when alembic's own CLI is used
    raise RuntimeError("run migrations with `crossbeat db upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
