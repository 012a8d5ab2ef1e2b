"""Fuzzing the TF.js loader with malformed copies of CNN Explainer's real model.

Each example takes the genuine ``model.json`` and shard, changes one to three things
(a value anywhere in the JSON replaced by a hostile one -- 0, negative, huge, the wrong
type, a deeply nested array -- a key removed, the shard cut or extended), and loads the
result. The loader may accept it or raise :class:`ConvscopeError` with one line; any
other exception is a bug. A model it accepts must also run a forward pass.
"""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from convscope.errors import ConvscopeError
from convscope.models.tfjs import load_tfjs_model

DEEP = "__deep__"  # placeholder replaced by a deeply nested array in the JSON text
HOSTILE = st.one_of(
    st.sampled_from(
        [
            0,
            -1,
            -3,
            1,
            2,
            2**31,
            2**63,
            10**30,
            65536,
            1e308,
            -1e-9,
            0.5,
            float("nan"),
            float("inf"),
            None,
            True,
            False,
            "",
            "same",
            "relu",
            "float16",
            "x" * 300,
            "a\0b",
            "../x",
            "/etc/passwd",
            [],
            {},
            [0, 0],
            [-1, 2],
            [2**40] * 4,
            [65536] * 4,
            [None, 0, 0, 3],
            {"config": 3},
            {"dtype": "uint8"},
            DEEP,
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.lists(st.integers(min_value=-4, max_value=70), max_size=5),
)


class _Genuine(tuple):
    """(model.json as a dict, shard bytes), with a short repr for hypothesis' reports."""

    def __repr__(self) -> str:
        return "<CNN Explainer's model.json and shard>"


@pytest.fixture(scope="module")
def genuine(cnn_explainer_dir):
    return _Genuine(
        (
            json.loads((cnn_explainer_dir / "model.json").read_text()),
            (cnn_explainer_dir / "group1-shard1of1.bin").read_bytes(),
        )
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("tfjs-fuzz")


def _paths(node, prefix=()) -> list[tuple]:
    """Every place in the JSON tree (root excluded), so mutations land anywhere evenly,
    deep layer options included."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    found = []
    for key, child in items:
        found.append(prefix + (key,))
        found.extend(_paths(child, prefix + (key,)))
    return found


def _mutate(data: st.DataObject, spec: dict, paths: list[tuple]) -> None:
    """Replace (or, one time in ten, delete) the value at one of ``paths``, if it is still there."""
    *parents, key = data.draw(st.sampled_from(paths), label="where")
    node = spec
    for step in parents:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return  # an earlier change removed this place
        if not isinstance(node, (dict, list)):
            return
    if (
        isinstance(node, list)
        and not (isinstance(key, int) and key < len(node))
        or isinstance(node, dict)
        and key not in node
    ):
        return
    if data.draw(st.integers(0, 9), label="delete?") == 0:
        del node[key]
    else:  # a copy: later changes must not edit HOSTILE's own lists
        node[key] = copy.deepcopy(data.draw(HOSTILE, label="value"))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_malformed_tfjs_models_raise_only_convscope_errors(genuine, folder, data):
    spec, shard = json.loads(json.dumps(genuine[0])), genuine[1]
    paths = _paths(spec)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        _mutate(data, spec, paths)
    cut = data.draw(st.sampled_from([None, 0, 4, -4, -40, 8]), label="shard change")
    if cut is not None:
        shard = shard[:cut] if cut <= 0 else shard + bytes(cut)
    text = json.dumps(spec).replace(json.dumps(DEEP), "[" * 30_000 + "]" * 30_000)
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "model.json").write_text(text)
    (folder / "group1-shard1of1.bin").write_bytes(shard)
    accepted_or_refused(lambda: load_tfjs_model(folder / "model.json"))


def accepted_or_refused(load) -> None:
    """The fuzz property of every model loader: ``load()`` raises :class:`ConvscopeError`
    with one line, or returns a model that runs a forward pass."""
    try:
        model = load()
    except ConvscopeError as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        event("refused")
        return
    event("accepted")
    c, h, w = model.input_shape
    if c * h * w <= 3 * 128 * 128:  # an accepted model runs
        with torch.no_grad():
            model.net(torch.zeros(1, c, h, w))
