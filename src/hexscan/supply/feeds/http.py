"""One HTTP client for every feed: timeouts, retries with backoff, conditional GET, size cap.

Why one place: NVD rate-limits (429/503 with ``Retry-After``), GCS serves ETags, EPSS moves
hosts. Every feed gets the same behaviour and the same error type, and tests point every
feed at a real server on 127.0.0.1 through the base-URL settings.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from hexscan import __version__

#: Status codes worth another try after a pause.
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
USER_AGENT = f"hex/{__version__} (+vulnfetch)"


class FeedError(Exception):
    """A feed could not be fetched or parsed; the DB is left as it was."""


@dataclass(frozen=True)
class Response:
    """A fetched resource: ``path`` is a temp file the caller owns (None on 304)."""

    url: str
    status: int
    path: str | None
    etag: str | None
    last_modified: str | None
    headers: Mapping[str, str]

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def read_bytes(self) -> bytes:
        if self.path is None:
            return b""
        with open(self.path, "rb") as handle:
            return handle.read()

    def discard(self) -> None:
        if self.path is not None and os.path.exists(self.path):
            os.unlink(self.path)


@dataclass
class HttpClient:
    """requests with explicit timeouts, bounded retries and a download size cap.

    ``sleep`` is injectable so a test can count the pauses without waiting for them.
    """

    timeout: float = 60.0
    retries: int = 5
    backoff: float = 2.0
    max_retry_after: float = 120.0
    max_bytes: int = 2 << 30
    sleep: Callable[[float], None] = time.sleep
    session: requests.Session | None = None

    def __post_init__(self) -> None:
        if self.session is None:
            self.session = requests.Session()
            self.session.headers["User-Agent"] = USER_AGENT

    def get(self, url: str, *, params: Mapping[str, Any] | None = None,
            headers: Mapping[str, str] | None = None, etag: str | None = None,
            last_modified: str | None = None,
            progress: Callable[[int], None] | None = None) -> Response:
        """GET ``url`` into a temp file, retrying 429/5xx and connection errors.

        ``etag`` / ``last_modified`` make it conditional: a 304 comes back with no body.
        Any other non-2xx status, or too many retries, raises FeedError.
        """
        send = dict(headers or {})
        if etag:
            send["If-None-Match"] = etag
        if last_modified:
            send["If-Modified-Since"] = last_modified
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                resp = self._session().get(url, params=params, headers=send,
                                           timeout=self.timeout, stream=True)
            except requests.RequestException as exc:
                if last:
                    raise FeedError(f"{url}: {type(exc).__name__}: {exc}") from exc
                self.sleep(self._pause(attempt, None))
                continue
            with resp:
                if resp.status_code in RETRY_STATUS and not last:
                    self.sleep(self._pause(attempt, resp.headers.get("Retry-After")))
                    continue
                if resp.status_code == 304:
                    return Response(resp.url, 304, None, etag, last_modified, resp.headers)
                if not 200 <= resp.status_code < 300:
                    raise FeedError(f"{url}: HTTP {resp.status_code} {resp.reason}")
                path = self._save(resp, progress)
                return Response(resp.url, resp.status_code, path, resp.headers.get("ETag"),
                                resp.headers.get("Last-Modified"), resp.headers)
        raise FeedError(f"{url}: gave up after {self.retries + 1} attempts")

    def _session(self) -> requests.Session:
        assert self.session is not None
        return self.session

    def _pause(self, attempt: int, retry_after: str | None) -> float:
        """Retry-After (seconds or an HTTP date) when given, else exponential backoff."""
        if retry_after:
            try:
                return min(float(retry_after), self.max_retry_after)
            except ValueError:
                try:
                    delta = parsedate_to_datetime(retry_after).timestamp() - time.time()
                    return min(max(delta, 0.0), self.max_retry_after)
                except (TypeError, ValueError):
                    pass
        return min(self.backoff * float(2 ** attempt), self.max_retry_after)

    def _save(self, resp: requests.Response, progress: Callable[[int], None] | None) -> str:
        fd, path = tempfile.mkstemp(prefix="hex-feed-")
        done = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in resp.iter_content(chunk_size=1 << 16):
                    done += len(chunk)
                    if done > self.max_bytes:
                        raise FeedError(f"{resp.url}: larger than {self.max_bytes} bytes")
                    out.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except (requests.RequestException, OSError, FeedError) as exc:
            os.unlink(path)
            if isinstance(exc, FeedError):
                raise
            raise FeedError(f"{resp.url}: download failed: {exc}") from exc
        return path
