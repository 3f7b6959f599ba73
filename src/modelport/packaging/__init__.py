"""Packaging: snapshots of a source directory, honouring .amlignore / .gitignore."""
