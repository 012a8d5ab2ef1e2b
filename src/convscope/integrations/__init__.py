"""Bridges from other training frameworks to convscope's run folder (:class:`convscope.Run`).

Each lives in its own module and imports its framework only there, so ``import convscope``
never needs them: ``from convscope.integrations.lightning import ConvscopeCallback``
(``pip install convscope[lightning]``).
"""
