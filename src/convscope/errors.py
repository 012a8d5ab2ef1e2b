"""The one exception type for mistakes a user can fix.

Anything raised as :class:`ConvscopeError` is shown by the CLI as a one-line message
with a non-zero exit code and by the server as a 4xx response, never as a traceback.
Bugs (everything else) still raise normally so they can be reported and fixed.
"""

from __future__ import annotations


class ConvscopeError(Exception):
    """A user-facing error: bad input, an unknown name, a file that is not ours."""


class NotFound(ConvscopeError):
    """An unknown model, dataset, layer or file name (HTTP 404 in the server)."""
