"""The catalogues (server/static/i18n/<lang>.json) and what reads them.

- en.json and zh-CN.json have the same keys in every section, the same {placeholders} per key,
  and no empty text;
- every key the page asks for exists in English: t("...") / has("...") / data-i18n* in the
  page's scripts and index.html, found by a static scan. A key built at run time must start
  with one of DYNAMIC_PREFIXES (t(`overview.kinds.${kind}`)), listed with what it is built from;
- convscope.i18n.text reads the Chinese catalogue, and falls back to English for a key
  Chinese lacks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from convscope import i18n

STATIC = Path(i18n.__file__).parent / "server" / "static"
PLURAL_FORMS = {"zero", "one", "two", "few", "many", "other"}
PLACEHOLDER = re.compile(r"\{(\w+)\}")

# keys the page builds at run time, t(`PREFIX${value}`), by prefix: the section the prefix
# names must exist in en.json. A new one goes here with what it is built from.
DYNAMIC_PREFIXES = (
    "overview.kinds.",  # overview.js, detail.js, summary.js: a layer's kind (trace KINDS; checked below)
    "widgets.status.",  # jobs.js, task.js: a job's status (checked below)
    "learn.",  # learn.js: an article (a layer kind's article), its title, paragraphs p1..pN and "yours"
    "tour.",  # tour.js: a walkthrough step's title and text
    "playground.",  # playground.js: a setting's label (kernel, stride, ...)
    "playground.type_",  # playground.js: a kernel type
    "why.family.",  # why.js: an attribution method's family
    "why.metric.",  # why.js: a metric's name and its help text
    # built into a variable first (so not seen by the scan below), each with a fallback to the server's word:
    "why.methods.",  # why.js, compare.js: an attribution method's label and summary by its name (test_i18n_methods)
    "why.scale.",  # why.js: a heatmap's colour scale (heat, diverging)
    "training.status.",  # training.js: a run's status from /api/runs (running, finished, stopped, error)
    "dataset.split.",  # dataset.js, lookfor.js: a split's name (test, train, val)
)

# t("key"), has("key"), t(`key`) without ${...}, and t(`prefix${...}`) for built keys (not a
# method of the same name: url.searchParams.has("token"))
LITERAL_CALL = re.compile(r"""(?<![.\w$])(?:t|has)\(\s*(?:"([^"]+)"|'([^']+)'|`([^`$]+)`)""")
BUILT_CALL = re.compile(r"""(?<![.\w$])(?:t|has)\(\s*`([^`$]*)\$\{""")
HTML_ATTR = re.compile(r"""data-i18n(?:-[a-z-]+)?="([^"]+)\"""")


def _catalogue(lang: str) -> dict:
    return json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def _is_plural(node) -> bool:
    return isinstance(node, dict) and "other" in node and set(node) <= PLURAL_FORMS


def _leaves(node, prefix: str = "") -> dict[str, object]:
    """Every text (or plural-forms object) of a catalogue, by its dotted key."""
    if isinstance(node, str) or _is_plural(node):
        return {prefix: node}
    assert isinstance(node, dict), f"{prefix}: a catalogue value is text, plural forms or a section, not {node!r}"
    out: dict[str, object] = {}
    for k, v in node.items():
        out.update(_leaves(v, f"{prefix}.{k}" if prefix else k))
    return out


def _texts(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value.values())


def _placeholders(value) -> set[str]:
    return {p for text in _texts(value) for p in PLACEHOLDER.findall(text)}


def _sections(node, prefix: str = "") -> set[str]:
    """The dotted names of every section (object that is not plural forms)."""
    out = set()
    for k, v in node.items():
        if isinstance(v, dict) and not _is_plural(v):
            name = f"{prefix}.{k}" if prefix else k
            out |= {name} | _sections(v, name)
    return out


def _used_keys() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The literal keys and the built keys' prefixes the page's files use, each with where."""
    literal: dict[str, list[str]] = {}
    built: dict[str, list[str]] = {}
    files = sorted((STATIC / "js").glob("*.js")) + [STATIC / "index.html"]
    for path in files:
        src = path.read_text(encoding="utf-8")
        for m in LITERAL_CALL.finditer(src):
            literal.setdefault(next(g for g in m.groups() if g), []).append(path.name)
        for m in BUILT_CALL.finditer(src):
            built.setdefault(m.group(1), []).append(path.name)
        for m in HTML_ATTR.finditer(src):
            if "${" not in m.group(1):
                literal.setdefault(m.group(1), []).append(path.name)
    return literal, built


def test_the_page_and_python_ship_the_same_languages_each_with_a_catalogue():
    js = (STATIC / "js" / "i18n.js").read_text(encoding="utf-8")
    listed = re.search(r"export const LANGUAGES = [^\n]*\n((?:.*\n)*?)\]\);", js).group(1)
    assert tuple(re.findall(r'code: "([^"]+)"', listed)) == i18n.LANGUAGES == ("en", "zh-CN")
    assert sorted(p.stem for p in (STATIC / "i18n").glob("*.json")) == sorted(i18n.LANGUAGES)


@pytest.mark.parametrize("lang", [code for code in i18n.LANGUAGES if code != "en"])
def test_each_catalogue_has_the_english_keys_and_placeholders_and_no_empty_text(lang):
    en, zh = _leaves(_catalogue("en")), _leaves(_catalogue(lang))
    assert sorted(set(en) - set(zh)) == [], f"in English, missing from {lang}"
    assert sorted(set(zh) - set(en)) == [], f"in {lang}, not in English"
    assert _sections(_catalogue("en")) == _sections(_catalogue(lang))
    differ = {
        k: (sorted(_placeholders(en[k])), sorted(_placeholders(zh[k])))
        for k in en
        if _placeholders(en[k]) != _placeholders(zh[k])
    }
    assert differ == {}
    empty = [
        f"{code}:{k}"
        for code, leaves in (("en", en), (lang, zh))
        for k, v in leaves.items()
        if not all(t.strip() for t in _texts(v))
    ]
    assert empty == []


def test_the_chinese_catalogue_is_chinese():
    """A text copied over from English untranslated would pass the parity test; most keys of
    every section must read as Chinese (a few are symbols or names in both: ReLU, ▶, logit z)."""
    zh = _leaves(_catalogue("zh-CN"))
    han = re.compile(r"[\u4e00-\u9fff]")
    for section in {k.split(".")[0] for k in zh}:
        keys = [k for k in zh if k.split(".")[0] == section]
        chinese = [k for k in keys if any(han.search(t) for t in _texts(zh[k]))]
        assert len(chinese) >= 0.6 * len(keys), (section, sorted(set(keys) - set(chinese)))


def test_every_key_the_page_uses_is_in_the_english_catalogue():
    en = _catalogue("en")
    leaves, sections = _leaves(en), _sections(en)
    literal, built = _used_keys()
    assert len(literal) > 100  # the scan found the page's calls (a broken regex finds none and passes)
    missing = {k: where for k, where in literal.items() if k not in leaves and k not in sections}
    assert missing == {}
    unlisted = {p: where for p, where in built.items() if p not in DYNAMIC_PREFIXES}
    assert unlisted == {}, "a key built at run time needs its prefix listed in DYNAMIC_PREFIXES (and documented)"
    for prefix in DYNAMIC_PREFIXES:
        assert prefix.rsplit(".", 1)[0] in sections, prefix


def test_the_built_keys_cover_every_value_they_are_built_from():
    """overview.kinds has a word for every layer kind a trace can hold; widgets.status one for
    every state a job can be in."""
    from convscope.trace import KINDS

    en = _catalogue("en")
    assert set(en["overview"]["kinds"]) == set(KINDS)
    assert set(en["widgets"]["status"]) == {"queued", "running", "done", "failed", "cancelled"}


def test_python_reads_the_chinese_catalogue_and_falls_back_to_english():
    note = i18n.text("page.model_note", "zh-CN", shape="1×28×28", classes="10", parameters="4,440")
    assert note == "输入 1×28×28 · 10 个类别 · 4,440 个参数"
    assert i18n.text("page.model_note", shape="1×28×28", classes="10", parameters="4,440") == (
        "1×28×28 input · 10 classes · 4,440 parameters"
    )
    assert i18n.text("overview.kinds.conv", "zh-CN") == "卷积"
    i18n.catalogue.cache_clear()
    zh = i18n.catalogue("zh-CN")
    saved = zh["page"].pop("prediction")
    try:
        assert i18n.text("page.prediction", "zh-CN") == "prediction"  # Chinese lacks it: the English text
    finally:
        zh["page"]["prediction"] = saved
        i18n.catalogue.cache_clear()
    with pytest.raises(KeyError):
        i18n.text("page.no_such_key", "zh-CN")
