"""Shared bounds for the fuzz tests (``tests/test_fuzz_*.py``).

Each property runs a small number of examples by default, so the whole fuzz set stays well
inside a CI budget on two cores. ``TRUECOUNT_FUZZ_EXAMPLES=N`` raises every property to ``N``
examples for a long run, e.g. overnight::

    TRUECOUNT_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/test_fuzz_*.py -q
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def examples(default: int) -> int:
    """The number of examples a property runs: ``default``, or the environment's count."""
    raw = os.environ.get("TRUECOUNT_FUZZ_EXAMPLES", "").strip()
    return max(default, int(raw)) if raw.isdigit() else default


def fuzz(default: int) -> settings:
    """Hypothesis settings for one fuzz property: no deadline (the machine is shared), no
    health check on slow data generation, and the example count of :func:`examples`."""
    return settings(
        max_examples=examples(default),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=False,
    )
