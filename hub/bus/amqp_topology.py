"""The RabbitMQ topology of the hub's bus: names and arguments, one place.

For exchange `E`, queue prefix `P` and a logical queue `q`:

| name | kind | what it holds |
|---|---|---|
| `E` | topic exchange | every message, routed on `<type>.<source_system>` |
| `E.unrouted` | fanout exchange, the alternate exchange of `E` | messages no binding matched |
| `P.unrouted` | quorum queue | those messages, kept for inspection instead of dropped |
| `P.q` | quorum queue, `x-delivery-limit` | the work queue the consumers read |
| `P.q.retry.N` | quorum queue, `x-message-ttl` = back-off before attempt N+1 | failed messages waiting; on expiry dead-lettered (at least once) back to `P.q` |
| `P.q.dead` | quorum queue | messages that failed `max_attempts` times, with the error in headers |

Retries go to a delay queue per attempt because a queue-level TTL expires messages
in order (a per-message TTL would wait behind the head of the queue). A message that
keeps killing its consumer is redelivered by the broker rather than retried by us;
the quorum queue's delivery limit dead-letters it into `P.q.dead` all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.bus.port import RetryPolicy

ATTEMPT_HEADER = "x-hub-attempt"  # failed attempts so far
ERROR_HEADER = "x-hub-error"
ATTEMPTS_HEADER = "x-hub-attempts"
DEAD_AT_HEADER = "x-hub-dead-at"
QUEUE_HEADER = "x-hub-queue"

# Redeliveries by the broker (a consumer died or lost its connection with the message
# unacknowledged) before the quorum queue gives up on a message: generous, because a
# worker killed mid-batch returns a whole prefetch window, each counting one.
DELIVERY_LIMIT = 20


@dataclass(frozen=True)
class Topology:
    exchange: str
    prefix: str
    retry: RetryPolicy

    @property
    def unrouted_exchange(self) -> str:
        return f"{self.exchange}.unrouted"

    @property
    def unrouted_queue(self) -> str:
        return f"{self.prefix}.unrouted"

    def work_queue(self, queue: str) -> str:
        return f"{self.prefix}.{queue}"

    def dead_queue(self, queue: str) -> str:
        return f"{self.prefix}.{queue}.dead"

    def retry_queue(self, queue: str, attempt: int) -> str:
        return f"{self.prefix}.{queue}.retry.{attempt}"

    def retry_attempts(self) -> range:
        """Attempts after which a message waits in a delay queue (the last one dead-letters)."""
        return range(1, max(1, self.retry.max_attempts))

    def work_arguments(self, queue: str) -> dict[str, object]:
        return {"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.dead_queue(queue),
                "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}

    def retry_arguments(self, queue: str, attempt: int) -> dict[str, object]:
        return {"x-queue-type": "quorum", "x-message-ttl": max(1, int(self.retry.delay(attempt) * 1000)),
                "x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.work_queue(queue),
                "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}

    @staticmethod
    def plain_arguments() -> dict[str, object]:
        return {"x-queue-type": "quorum"}

    def all_queues(self, queue: str) -> list[str]:
        return ([self.work_queue(queue), self.dead_queue(queue)]
                + [self.retry_queue(queue, n) for n in self.retry_attempts()])
