"""truecount: the buyer's own meter for outcome-priced AI.

The library is the product; the CLI and the dashboard are thin layers over it::

    import truecount
    d = truecount.load_definition("examples/resolved_ticket.yaml")
    result = truecount.count(d, ["events.parquet"])
    print(result.to_json())
"""

from truecount.definition import Definition, load_definition, parse_definition
from truecount.engine import CountResult, compile_sql, count
from truecount.errors import TruecountError
from truecount.workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "CountResult",
    "Definition",
    "TruecountError",
    "Workspace",
    "__version__",
    "compile_sql",
    "count",
    "load_definition",
    "parse_definition",
]
