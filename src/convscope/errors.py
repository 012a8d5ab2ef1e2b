"""The one exception type for mistakes a user can fix.

Anything raised as :class:`ConvscopeError` is shown by the CLI as a one-line message
with a non-zero exit code and by the server as a 4xx response, never as a traceback.
Bugs (everything else) still raise normally so they can be reported and fixed.
"""

from __future__ import annotations

from collections.abc import Iterable


class ConvscopeError(Exception):
    """A user-facing error: bad input, an unknown name, a file that is not ours."""


class NotFound(ConvscopeError):
    """An unknown model, dataset, layer or file name (HTTP 404 in the server)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'tiny-vgg'?`` for the choices closest to a mistyped name (difflib, any
    case), or ``''``: appended to an unknown-name error, so a typo costs one look, not a search."""
    import difflib

    by_folded = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), by_folded, n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(by_folded[c]) for c in close)}?" if close else ""
