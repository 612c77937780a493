"""Cluster state in SQL (SQLite embedded, PostgreSQL for real clusters)."""
