"""The command line: parse arguments, make one library call, render the result.

Each verb lives in its own module and registers itself on :data:`app`; nothing outside this
package imports it.
"""

from truecount.cli.app import app, main

__all__ = ["app", "main"]
