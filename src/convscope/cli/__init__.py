"""The ``convscope`` command. Each sub-command lives in its own module under
:mod:`convscope.cli.commands` and registers itself; :mod:`convscope.cli.main` finds them."""
