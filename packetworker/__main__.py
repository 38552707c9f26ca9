"""`python -m packetworker` is the `packetworker` command."""

from packetworker.cli import main

main()
