"""The `rest` kind's HTTP client: one session with the token from the environment, timeouts,
a client-side rate limit, and retries with exponential back-off, jitter and `Retry-After`."""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from adapters.kinds.common import SourceConfigError
from adapters.kinds.rest.config import RestSource

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SAFE_TO_RESEND = frozenset({429, 503})  # the server says it did not act: even a POST may be resent


class RestError(RuntimeError):
    """The API could not be read or written (after the retries): names the URL and the status."""


class HttpClient:
    """One requests.Session with the auth header, timeouts, rate limit and retries."""

    def __init__(self, cfg: RestSource, env: Mapping[str, str], *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.env, self.sleep, self.clock = cfg, env, sleep, clock
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", **cfg.headers})
        self.session.verify = cfg.verify_tls
        self._authorised = False
        self._next_slot = 0.0

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.cfg.base_url.rstrip("/") + path

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """The response (any status once retries are spent); RestError when no response came."""
        self._authorise()
        resendable = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        retry, attempt = self.cfg.retry, 0
        while True:
            attempt += 1
            self._throttle()
            try:
                response = self.session.request(method, url, timeout=(self.cfg.connect_timeout_s,
                                                                      self.cfg.read_timeout_s), **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                sent = not isinstance(exc, requests.ConnectTimeout)
                if attempt == retry.max_attempts or (sent and not resendable):
                    raise RestError(f"{method} {url} failed after {attempt} attempt(s): "
                                    f"{type(exc).__name__}: {exc}") from exc
                self.sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status not in RETRY_STATUSES or attempt == retry.max_attempts or (
                    not resendable and status not in SAFE_TO_RESEND):
                return response
            self.sleep(self._retry_after(response) or self._backoff(attempt))

    def _authorise(self) -> None:
        if self._authorised or not self.cfg.token_env:
            return
        token = self.env.get(self.cfg.token_env)
        if not token:
            raise SourceConfigError(f"environment variable {self.cfg.token_env} (source.token_env) is not set")
        scheme = f"{self.cfg.auth_scheme} " if self.cfg.auth_scheme else ""
        self.session.headers[self.cfg.auth_header] = scheme + token
        self._authorised = True

    def _throttle(self) -> None:
        if not self.cfg.rate_limit_per_s:
            return
        now = self.clock()
        if self._next_slot > now:
            self.sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + 1.0 / self.cfg.rate_limit_per_s

    def _backoff(self, attempt: int) -> float:
        delay = min(self.cfg.retry.backoff_max_s, self.cfg.retry.backoff_s * 2 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)  # jitter: clients that failed together do not retry together

    def _retry_after(self, response: requests.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if value else None
            if when is None:
                return None
            seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
        return max(0.0, min(seconds, self.cfg.retry.retry_after_max_s))
