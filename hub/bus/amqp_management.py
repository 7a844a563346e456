"""Queue figures from RabbitMQ's management API (`rabbitmq_management` plugin, :15672).

Only figures come from here (depth, unacknowledged, consumers, publish and deliver
rates); the bus works without the plugin, falling back to a passive declare, which
gives depth and consumers but no rates. An unreachable API is remembered for a while
so a console page does not wait on it for every queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import requests


@dataclass(frozen=True)
class BrokerQueueFigures:
    name: str
    ready: int
    unacked: int
    consumers: int
    publish_rate: float | None  # messages/s, broker's own moving average
    deliver_rate: float | None


def management_url_for(amqp_url: str, port: int = 15672) -> tuple[str, str, tuple[str, str]]:
    """(base URL, vhost, credentials) of the management API beside an `amqp://` URL."""
    parts = urlsplit(amqp_url)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
    return f"http://{parts.hostname or '127.0.0.1'}:{port}", vhost, auth


class ManagementClient:
    def __init__(self, amqp_url: str, *, base_url: str | None = None, timeout_s: float = 1.0,
                 retry_after_s: float = 30.0) -> None:
        derived, self.vhost, self.auth = management_url_for(amqp_url)
        self.base_url = (base_url or derived).rstrip("/")
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._down_until = 0.0

    def queue(self, name: str) -> BrokerQueueFigures | None:
        """Figures of one queue, or None when the API is not there (or the queue is not)."""
        if time.monotonic() < self._down_until:
            return None
        url = f"{self.base_url}/api/queues/{quote(self.vhost, safe='')}/{quote(name, safe='')}"
        try:
            response = requests.get(url, auth=self.auth, timeout=self.timeout_s)
        except requests.RequestException:
            self._down_until = time.monotonic() + self.retry_after_s
            return None
        if response.status_code != 200:
            if response.status_code != 404:
                self._down_until = time.monotonic() + self.retry_after_s
            return None
        return parse_queue(response.json())


def parse_queue(data: dict) -> BrokerQueueFigures:
    stats = data.get("message_stats") or {}

    def rate(key: str) -> float | None:
        details = stats.get(f"{key}_details")
        return float(details["rate"]) if details and "rate" in details else None

    deliver = rate("deliver_get")
    return BrokerQueueFigures(
        name=data["name"], ready=int(data.get("messages_ready") or 0),
        unacked=int(data.get("messages_unacknowledged") or 0), consumers=int(data.get("consumers") or 0),
        publish_rate=rate("publish"), deliver_rate=deliver if deliver is not None else rate("deliver"))
