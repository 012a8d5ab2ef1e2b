"""Progress bars for long work: one tqdm bar behind the ``progress(done, total)`` callbacks.

Long library calls (:func:`convscope.sanity_check`, :func:`convscope.visualize`) take a
``progress`` argument that is either

* a callable ``progress(done, total)``: called as the work advances (the server's jobs, the CLI);
* ``True`` (their default): a :mod:`tqdm.auto` bar on stderr, a widget in Jupyter, that
  appears only once the call has run for :data:`DELAY` seconds, so quick calls print nothing;
* ``False`` or ``None``: silent.

:func:`progress_callback` turns that argument into a callable (or None), once, so every
long function reads it the same way. The CLI's ``--no-progress`` bars are the same class.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

Callback = Callable[[int, int], None]
ProgressArg = bool | Callback | None

DELAY = 1.0  # seconds a library call runs before its default bar appears


class ProgressBar:
    """Draws ``progress(done, total)`` callbacks as a tqdm bar on stderr; a new total starts
    a new bar (one method after another, one phase after another). Does nothing when
    ``enabled`` is false; use as a context manager so the bar is closed on errors too.
    ``delay``: seconds before the bar is first drawn (tqdm's ``delay``)."""

    def __init__(self, desc: str, unit: str = "it", enabled: bool = True, delay: float = 0.0) -> None:
        self.desc, self.unit, self.enabled, self.delay = desc, unit, enabled, delay
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None or self.bar.total != total:
            from tqdm.auto import tqdm

            self.close()
            self.bar = tqdm(
                total=total,
                desc=self.desc,
                unit=self.unit,
                leave=False,
                dynamic_ncols=True,
                file=sys.stderr,
                delay=self.delay,
            )
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_callback(progress: ProgressArg, desc: str, unit: str = "it") -> Callback | None:
    """The callable behind a ``progress`` argument (see the module docstring): the caller's own,
    a delayed bar for ``True``, None for ``False`` / ``None``."""
    if progress is True:
        return ProgressBar(desc, unit, delay=DELAY)
    if progress is None or progress is False:
        return None
    if not callable(progress):
        from .errors import ConvscopeError

        raise ConvscopeError(f"progress must be True, False or a callable progress(done, total), not {progress!r}")
    return progress
