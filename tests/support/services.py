"""Real PostgreSQL and RabbitMQ for tests: each run gets its own database and queue names.

Without HUB_REQUIRE_SERVICES=1 a test whose service is absent skips with the reason;
with it set, an absent service is a failure."""

from __future__ import annotations

import os
import socket
import uuid

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("HUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("HUB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def services_required() -> bool:
    return os.environ.get("HUB_REQUIRE_SERVICES") == "1"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _port_open(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if services_required():
        pytest.fail(f"{message} and HUB_REQUIRE_SERVICES=1")
    pytest.skip(message)


def create_pg_database(prefix: str = "hub_test") -> str:
    """Create a fresh database and return its SQLAlchemy URL."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def require_rabbitmq() -> str:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    return AMQP_URL
