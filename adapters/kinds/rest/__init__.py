"""The `rest` adapter kind: a JSON API read page by page, and written back with POST/PATCH.

Per entity: a collection `path`, where the records sit in the body (`items_key`), their id
(`id_field`), and a pagination style: `page` (page number and size), `cursor` (the next
cursor is in the body) or `link` (RFC 5988 `Link: <…>; rel="next"`). With
`updated_since_param` and `updated_field` the read is incremental: the newest `updated_field`
seen becomes the cursor, checkpointed only once every page has been read, so a crash
re-reads rather than skips (row hashes make the re-read silent). A full listing compares
row hashes and announces deletions; incremental runs do so every `full_scan_every_s`.

The token comes from the environment (`token_env`), never from a file. Every request has a
timeout, is spaced by the client-side rate limit, and is retried with exponential back-off
and jitter on 429/5xx and connection errors, honouring `Retry-After`.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

from adapters.kinds.common import SourceConfigError, parse_config
from adapters.kinds.rest.adapter import RestAdapter
from adapters.kinds.rest.client import HttpClient, RestError
from adapters.kinds.rest.config import RestEntity, RestSource, RestWrite

__all__ = ["HttpClient", "RestAdapter", "RestEntity", "RestError", "RestSource", "RestWrite", "build", "columns"]


def build(system: str, source: dict, entities: dict[str, dict], *, base_dir: pathlib.Path,
          env: Mapping[str, str]) -> RestAdapter:
    if "token" in source:
        raise SourceConfigError("source.token: a token is never written in a mapping file; "
                                "name the environment variable that holds it with `token_env`")
    cfg = parse_config(RestSource, source, "source", "rest")
    parsed = {name: parse_config(RestEntity, ent, f"entities.{name}", "rest") for name, ent in entities.items()}
    for name, ent in parsed.items():
        if ent.updated_since_param and not ent.updated_field:
            raise SourceConfigError(f"entities.{name}.updated_field: needed with updated_since_param, "
                                    "to know how far an incremental read got")
    return RestAdapter(system, cfg, parsed, env=env)


def columns(source: dict, entity_cfg: dict, *, base_dir: pathlib.Path,
            env: Mapping[str, str]) -> list[str] | None:
    """An API's fields are only known once it answers: no load-time column check."""
    return None
