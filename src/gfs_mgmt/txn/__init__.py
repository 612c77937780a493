"""Transactions: recorded do/undo steps (docs/txn.md)."""
