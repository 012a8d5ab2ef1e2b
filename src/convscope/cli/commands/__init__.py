"""One module per sub-command. Each defines ``register(subparsers)`` which adds a parser
whose ``func`` default takes the parsed ``argparse.Namespace`` and returns an exit code."""
