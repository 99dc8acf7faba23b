"""``python -m tape`` runs the command line."""

from tape.cli import main

main()
