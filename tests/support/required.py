"""A service or tool the tests need: missing, it skips the test, or fails it under REQUIRE_DOCKER=1 (set by
.ci/run, where nothing may be skipped for want of an engine, a plugin or a test host)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRED = os.environ.get("REQUIRE_DOCKER") == "1"


def unavailable(what: str, detail: str) -> NoReturn:
    message = f"{what} is not available: {detail}"
    if REQUIRED:
        pytest.fail(f"{message} (REQUIRE_DOCKER=1 makes this a failure)", pytrace=False)
    pytest.skip(message)
