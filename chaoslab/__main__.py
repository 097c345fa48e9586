"""``python -m chaoslab`` runs the command line."""

from chaoslab.cli import main

main()
