"""The Why? panel names attribution methods from the catalogue (why.methods.NAME.label / .summary),
so the Chinese page can call them 积分梯度 or 遮挡. English is the methods' own label and
summary: this keeps en.json equal to what the server sends, and every method the server offers
has both texts in every language (a new method without them would show in English on a Chinese
page, or an English text drift from the class it describes)."""

from __future__ import annotations

import pytest

from convscope import i18n
from convscope.server.explain_views import method_info


@pytest.mark.parametrize("method", method_info(), ids=lambda m: m["name"])
def test_the_catalogue_names_every_method_as_the_server_does(method):
    key = f"why.methods.{method['name']}"
    assert i18n.text(f"{key}.label") == method["label"]
    assert i18n.text(f"{key}.summary") == method["summary"]
    for lang in i18n.LANGUAGES:
        entry = i18n.catalogue(lang)["why"]["methods"][method["name"]]
        assert set(entry) == {"label", "summary"} and all(entry.values()), (lang, entry)


def test_the_catalogue_has_no_method_the_server_lacks():
    assert set(i18n.catalogue("en")["why"]["methods"]) == {m["name"] for m in method_info()}
