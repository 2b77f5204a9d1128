"""The local dashboard (``truecount serve``): read-only pages over the library's results.

Nothing in the library imports this package; it imports the library (docs/serve.md).
"""

from truecount.web.app import create_app
from truecount.web.meters import Dashboard, MeterKey

__all__ = ["Dashboard", "MeterKey", "create_app"]
