"""JSON API under /api/v1. Each module defines `bp` and `OPENAPI_PATHS` (its part of the document)."""
