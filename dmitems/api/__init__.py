"""The HTTP API: ``create_app(settings)`` builds a FastAPI app; ``dmitems serve`` runs it."""

from dmitems.api.app import create_app

__all__ = ["create_app"]
