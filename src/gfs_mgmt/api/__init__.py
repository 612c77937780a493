"""gfsd's REST API (FastAPI): handlers only; wire types live in gfs.api.models."""
