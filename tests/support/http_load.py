"""HTTP through a stack's proxy: one GET, and a bounded load that counts what failed (loopback and the test
hosts only; every loop is bounded in requests and in time)."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from types import TracebackType


def get(url: str, timeout: float = 10, host: str = "localhost") -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host})  # noqa: S310 (the tests' own stacks)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode(errors="replace")


@dataclass(frozen=True)
class LoadResult:
    sent: int
    failed: int
    seconds: float
    statuses: dict[str, int]
    errors: list[str]


class Load:
    """A few threads sending GETs round the urls until stopped or a cap is reached."""

    def __init__(
        self, urls: list[str], *, threads: int = 4, max_requests: int = 20000, max_seconds: float = 300
    ) -> None:
        self.urls = urls
        self.threads = threads
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent = 0
        self._failed = 0
        self._statuses: dict[str, int] = {}
        self._errors: list[str] = []
        self._workers: list[threading.Thread] = []
        self._started = 0.0

    def _work(self, offset: int) -> None:
        deadline = self._started + self.max_seconds
        i = offset
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if self._sent >= self.max_requests:
                    return
                self._sent += 1
            url = self.urls[i % len(self.urls)]
            i += 1
            try:
                status, _ = get(url)
                outcome, failed = str(status), status != 200
            except (OSError, urllib.error.URLError) as err:
                outcome, failed = type(err).__name__, True
            with self._lock:
                self._statuses[outcome] = self._statuses.get(outcome, 0) + 1
                if failed:
                    self._failed += 1
                    if len(self._errors) < 20:
                        self._errors.append(f"{url}: {outcome}")
            time.sleep(0.01)

    def __enter__(self) -> Load:
        self._started = time.monotonic()
        self._workers = [
            threading.Thread(target=self._work, args=(n,), daemon=True) for n in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def result(self) -> LoadResult:
        with self._lock:
            return LoadResult(
                self._sent,
                self._failed,
                time.monotonic() - self._started,
                dict(self._statuses),
                list(self._errors),
            )
