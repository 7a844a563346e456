"""Version of the canonical model; bump the minor for additive changes, the major for breaking ones."""

SCHEMA_VERSION = "1.0"
