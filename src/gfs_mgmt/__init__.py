"""gfsd: the management daemon (cluster state in SQL, REST, transactions)."""
