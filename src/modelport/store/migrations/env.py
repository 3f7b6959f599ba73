"""Alembic environment: migrate the connection ``Store`` passes in ``config.attributes["connection"]``.

The caller owns the transaction (and, on PostgreSQL, the lock that keeps two openers apart),
so every revision runs inside it and a failed upgrade changes nothing.
"""

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
