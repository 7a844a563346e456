"""The `Bus` port. `hub/bus/sqlite.py` and `hub/bus/amqp.py` both satisfy it and pass
`tests/contract/test_bus_contract.py`.

Delivery is at least once. A handler receives a batch (up to `batch_size`
messages) and acknowledges all of them by returning. If it raises on a batch of
several, the bus hands each message of the batch to it alone, so one poison
message cannot hold back the others; a message whose handler raises is retried
with back-off until `max_attempts`, then dead-lettered with the error.
Consumers are idempotent through the store's inbox, not through the bus.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from canonical.messages import Envelope

Handler = Callable[[list[Envelope]], None]


@dataclass(frozen=True)
class QueueBinding:
    queue: str
    patterns: tuple[str, ...]  # topic patterns on the routing key `<type>.<source_system>`


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 60.0

    def delay(self, attempt: int) -> float:
        """Back-off before attempt `attempt + 1` (attempt counts from 1)."""
        return min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    queue: str
    envelope: Envelope
    error: str
    attempts: int
    dead_at: dt.datetime


@dataclass(frozen=True)
class QueueStats:
    queue: str
    ready: int
    in_flight: int
    dead: int
    consumers: int


class BusError(Exception):
    """The bus could not accept or deliver a message (broker down, store unavailable)."""


class Bus(Protocol):
    def declare(self, bindings: Sequence[QueueBinding]) -> None:
        """Create exchange, queues and dead-letter queues; idempotent."""

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Return only once every envelope is durably accepted (confirmed)."""

    def consume(
        self,
        queue: str,
        handler: Handler,
        *,
        batch_size: int = 1,
        max_messages: int | None = None,
        idle_timeout_s: float | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        """Deliver messages to `handler` until a limit is reached; return how many were acked."""

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]: ...

    def replay(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        """Move dead letters (all, or those named) back to the queue; return how many moved."""

    def stats(self, queue: str) -> QueueStats: ...

    def waiting(self, queue: str) -> int:
        """Messages on `queue` not yet handled: ready, waiting out a retry delay, or handed to a
        consumer and not yet acknowledged (exact: a records worker decides from it to link in bulk)."""

    def close(self) -> None: ...
