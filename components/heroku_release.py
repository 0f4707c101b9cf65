"""Where states written before the `providers/` layout find the Heroku release provider.

A dynamic provider is pickled into the state by reference to its module: a stack released by the older
layout names `components.heroku_release.HerokuReleaseProvider` (and its `RetryPolicy`), and `refresh` (or a
delete) unpickles those names before any new program runs. tests/e2e/test_layout_aliases.py unpickles such a
state's provider.
"""

from providers.heroku_release import HerokuReleaseProvider, RetryPolicy

__all__ = ["HerokuReleaseProvider", "RetryPolicy"]
