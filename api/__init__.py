"""Serving: the FastAPI application, its routes and the built-in live page."""
