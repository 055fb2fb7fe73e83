"""The browser labeler (FastAPI app, page and static files)."""
