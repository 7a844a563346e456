"""The hub's web app: consolidated view, review, decommissioning, message console, JSON API."""

from admin_ui.app import create_app

__all__ = ["create_app"]
