"""Settings for the test suite: the same settings, with the test environment's fixed keys."""

import os

os.environ["WUYIQU_ENV"] = "test"

from wuyiqu.settings import *  # noqa: E402,F403
