"""Hypothesis profiles of the suite.

- ``ci``: loaded automatically when ``CI`` is set (Hypothesis' own rule); derandomised, no deadline,
  no example database, few examples so the whole suite fits CI's budget on 2 cores.
- ``dev``: the default on a developer machine: random, a moderate number of examples.
- ``thorough``: deep runs, ``HYPOTHESIS_PROFILE=thorough pytest``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

settings.register_profile("ci", parent=settings.get_profile("ci"), max_examples=25, **_common)
settings.register_profile("dev", max_examples=50, **_common)
settings.register_profile("thorough", max_examples=1000, **_common)

_default = "ci" if os.environ.get("CI") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))
