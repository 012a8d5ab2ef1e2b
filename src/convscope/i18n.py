"""The words convscope writes, in English and Simplified Chinese, from one catalogue per language.

The catalogues are the page's own (``server/static/i18n/<lang>.json``): a sentence the
server composes for the page (an interpretation, a warning) is sent as a key and its
parameters, the page puts it in the reader's language, and the CLI prints the English text
of the same key through :func:`text`. So every sentence exists once per language.

Values are plain text with ``{name}`` placeholders. Parameters are data (class names,
layer names, numbers already formatted the way the sentence shows them) and are substituted
as text; nothing in a catalogue or a parameter is evaluated (no ``str.format`` attribute or
index lookups). A parameter may itself be a :func:`message` (a clause chosen by the code,
such as "drops" or "raises"), rendered in the same language, so a sentence with variants
is one key plus a key per clause rather than one key per combination.

The catalogue section ``server`` holds the sentences Python composes for the page (the Why?
panel's reading, the sanity check's verdicts, input warnings, the dead-channel notes).
Error text (an exception's message: a model that failed to load, a refused request, a
failed job) stays English on purpose: it is also what the logs and the CLI print, and the
page shows it as it came.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("en", "zh-CN")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@cache
def catalogue(lang: str = "en") -> dict[str, Any]:
    """The parsed catalogue for ``lang`` (one of :data:`LANGUAGES`)."""
    if lang not in LANGUAGES:
        raise ValueError(f"no catalogue for language {lang!r}: choose one of {', '.join(LANGUAGES)}")
    path = resources.files("convscope") / "server" / "static" / "i18n" / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _lookup(cat: dict[str, Any], key: str) -> Any:
    value: Any = cat
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def text(key: str, lang: str = "en", **params: Any) -> str:
    """The sentence for ``key`` in ``lang`` (English where that catalogue lacks it), filled in.

    A key missing from English is a bug; it raises ``KeyError`` so tests find it.
    """
    value = _lookup(catalogue(lang), key) if lang != "en" else None
    if not isinstance(value, (str, dict)):
        value = _lookup(catalogue("en"), key)
    if isinstance(value, dict):
        value = value.get("one") if params.get("n") == 1 and "one" in value else value.get("other")
    if not isinstance(value, str):
        raise KeyError(f"no message {key!r} in the English catalogue")
    return _PLACEHOLDER.sub(lambda m: _param(params, m.group(1), lang) if m.group(1) in params else m.group(0), value)


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("key"), str) and isinstance(value.get("params", {}), dict)


def _param(params: dict[str, Any], name: str, lang: str) -> str:
    """One parameter as text: a nested message in ``lang``, anything else as ``str``."""
    value = params[name]
    if _is_message(value):
        return text(value["key"], lang, **value.get("params", {}))
    return str(value)


def message(key: str, **params: Any) -> dict[str, Any]:
    """A sentence as the server sends it: the key and params for the page, the English text for everyone else."""
    return {"key": key, "params": params, "text": text(key, **params)}
