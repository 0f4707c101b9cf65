"""A stack file's config as the engine hands it to the program, with test values for its secrets."""

from __future__ import annotations

from typing import Any

from reports.stack_files import config_text, read_stack_config
from settings import HEROKU_API_KEY, NAMESPACE

STACKS = ("local", "dev", "prod", "servers", "iaas")
# Stand-in values for the secrets a stack holds encrypted or in the environment (CI's HEROKU_API_KEY).
TEST_SECRETS = {
    "heroku": {HEROKU_API_KEY: "test-heroku-api-key-0000"},
    "servers": {
        "flightdeck:bucketAccessKey": "TESTACCESSKEY0000",
        "flightdeck:bucketSecretKey": "test-secret-0000",
    },
}


def stack_config(stack: str, **overrides: Any) -> tuple[dict[str, str], set[str]]:
    """(config, secret keys) of Pulumi.<stack>.yaml; overrides are flightdeck keys (None removes one)."""
    config = read_stack_config(stack)
    secrets: set[str] = set()
    given = TEST_SECRETS.get(config.get(f"{NAMESPACE}:target", ""), {})
    config.update(given)
    secrets.update(given)
    for key, value in overrides.items():
        if value is None:
            config.pop(f"{NAMESPACE}:{key}", None)
        else:
            config[f"{NAMESPACE}:{key}"] = config_text(value)
    return config, secrets
