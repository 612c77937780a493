"""gfsd's REST API as data: wire models and a typed client (shared by CLI and mount)."""
