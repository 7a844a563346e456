"""`hub.toml`, validated at load. Environment variables override URLs and secrets,
so the same file serves a laptop, CI and docker-compose."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigError(Exception):
    """hub.toml is unreadable or invalid; the message names the file and the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreConfig(_Section):
    url: str = "sqlite:///var/hub.db"
    pool_size: int = 5


class BusConfig(_Section):
    url: str = Field("sqlite", description="'sqlite' (table queue inside the store) or amqp://…")
    exchange: str = "hub"
    queue_prefix: str = "hub"
    prefetch: int = 200
    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 60.0
    visibility_timeout_s: float = 60.0


class IngestConfig(_Section):
    # records an ingest announces per `source.record.batch` message (one outbox row, bus message,
    # journal entry and inbox row each); 1 gives one message per record
    records_per_message: int = Field(200, ge=1)


class WorkerConfig(_Section):
    batch_size: int = 5  # messages per delivery: 5 record batches of 200 make one transaction of 1,000
    # records per worker transaction: a delivery's messages are applied in transactions of about
    # this many records (a message is never split); the inbox makes a redelivery after a crash harmless
    records_per_transaction: int = Field(1000, ge=1)
    idle_sleep_s: float = 0.2
    # identity candidates kept between batches per worker (~8 KB each, measured): a load sweeps every person
    # once per system, so below the estate's person records the least-recently-used ones churn
    candidate_records: int = 400_000
    # from this many messages waiting on the records queue (an initial load: 20 record batches are
    # ~4,000 records), new person records are linked in bulk once the backlog is gone, rather than
    # one batch at a time (hub/identity/bulk_link.py); 0: always one batch at a time
    bulk_link_backlog: int = Field(20, ge=0)
    # the most held records one clustering of a bulk link takes (memory: with the linked records
    # sharing a blocking key with them); more are linked in successive clusterings
    bulk_link_max_records: int = Field(500_000, ge=1)
    # a bulk link of this many held records or more that starts when no ingest is running runs in
    # a child process (its own core and interpreter lock, with two forked writers:
    # hub/identity/bulk_process.py) while the worker goes on storing; beside an ingest, and with 0,
    # on the worker's thread (on two cores a child beside the ingest took the ingest's core)
    bulk_link_process_at: int = Field(20_000, ge=0)
    # ... and in that child, the most held records one clustering takes: its memory goes back to the
    # system when it ends, so it can take more than the worker's thread. A link the child starts once
    # the queue is stored then clusters all that is held at once, reading the index as context once;
    # a worker still behind links whole chunks of `bulk_link_max_records` there too
    bulk_link_process_max_records: int = Field(1_000_000, ge=1)
    # once a load's ingest has ended, a worker (run as `hub worker`) linking a chunk on its thread
    # starts a second process storing the rest of the queue on the core the ingest has left, and
    # links all that is held at once when the queue is empty (hub/storing_helper.py). Off by default:
    # it gained 3-5 % at 100,000-200,000 people but nothing measurable at 1,000,000 on SQLite, where
    # one clustering of the rest cost what two did (docs/performance.md, sixteenth session)
    storing_helper: bool = False


class SystemsConfig(_Section):
    dir: str = "systems"
    estate_dir: str = "var/estate"


class WebConfig(_Section):
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: str | None = None


class HubConfig(_Section):
    store: StoreConfig = StoreConfig()
    bus: BusConfig = BusConfig()
    ingest: IngestConfig = IngestConfig()
    worker: WorkerConfig = WorkerConfig()
    systems: SystemsConfig = SystemsConfig()
    web: WebConfig = WebConfig()
    source_path: str | None = Field(None, description="the file this was loaded from")


ENV_OVERRIDES = {
    "HUB_STORE_URL": ("store", "url"),
    "HUB_BUS_URL": ("bus", "url"),
    "HUB_SECRET_KEY": ("web", "secret_key"),
    "HUB_ESTATE_DIR": ("systems", "estate_dir"),
    "HUB_SYSTEMS_DIR": ("systems", "dir"),
    "HUB_WEB_PORT": ("web", "port"),
}


def load_config(path: str | Path | None = "hub.toml", env: Mapping[str, str] | None = None) -> HubConfig:
    """Read `path` (absent file: defaults), apply environment overrides, validate."""
    env = os.environ if env is None else env
    data: dict = {}
    if path and Path(path).exists():
        try:
            data = tomllib.loads(Path(path).read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        data["source_path"] = str(path)
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            data.setdefault(section, {})[key] = env[var]
    try:
        return HubConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path or 'configuration'}: {problems}") from exc
