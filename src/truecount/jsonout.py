"""One JSON writer for every ``--format json`` output: always strict, parseable JSON.

Python's ``json`` writes ``NaN`` and ``Infinity`` for non-finite floats, which no strict
parser (``json.loads`` with ``parse_constant`` refusing them, ``jq``, JavaScript) accepts. A
rate over zero periods or a statistic over no pairs is *unknown*, so non-finite floats are
written as ``null``, and ``allow_nan=False`` makes any float that slipped past an error here
rather than a file a consumer cannot read.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (at any depth) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(
    value: Any, *, indent: int | None = 2, default: Any = None, ensure_ascii: bool = False
) -> str:
    """Strict JSON text for ``value``: non-finite floats as ``null``, unicode kept as is."""
    return json.dumps(
        finite(value), indent=indent, ensure_ascii=ensure_ascii, allow_nan=False, default=default
    )
