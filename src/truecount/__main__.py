"""``python -m truecount`` runs the CLI."""

from truecount.cli import main

main()
