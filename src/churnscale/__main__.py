"""``python -m churnscale`` runs the CLI."""

from churnscale.cli import main

main()
