"""The workspace store: SQLAlchemy records of models, environments, snapshots, services; artifact blobs."""
