"""The hub's queue topology: which queue receives which message types."""

from __future__ import annotations

from hub.bus.port import QueueBinding

RECORDS_QUEUE = "records"
ROUTING_QUEUE = "routing"
ALERTS_QUEUE = "alerts"

DEFAULT_BINDINGS: tuple[QueueBinding, ...] = (
    QueueBinding(RECORDS_QUEUE, ("source.record.#",)),
    QueueBinding(ROUTING_QUEUE, ("identity.#", "route.#")),
    QueueBinding(ALERTS_QUEUE, ("alert.#",)),
)
