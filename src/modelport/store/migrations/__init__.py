"""Alembic migrations of the workspace store; ``Store`` runs them to head when it opens a database."""
