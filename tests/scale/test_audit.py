"""The dataset-wide attribution audit on the local engine: against the metrics called by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convscope.data import load_splits
from convscope.errors import ConvscopeError
from convscope.explain import attribute
from convscope.explain.audit import audit, merge
from convscope.explain.metrics import deletion, insertion
from convscope.models import load_model


@pytest.fixture(scope="module")
def setup():
    model = load_model("default")
    data = load_splits("digits")["test"].subset(list(range(24)))
    return model, data, audit(model, data, steps=8, batch_size=8)


def test_each_image_matches_the_metrics_called_by_hand(setup):
    model, data, result = setup
    x, y = next(data.conform(model.preprocessing).batches(model.preprocessing, batch_size=8))
    maps = attribute(model, x, "gradcam")
    np.testing.assert_array_equal(result.targets[:8], maps.targets.numpy())
    np.testing.assert_allclose(result.deletion[:8], deletion(model, x, maps, steps=8).auc.numpy(), atol=1e-6)
    np.testing.assert_allclose(result.insertion[:8], insertion(model, x, maps, steps=8).auc.numpy(), atol=1e-6)
    flat = maps.maps.flatten(1)
    np.testing.assert_array_equal(result.degenerate[:8], (flat.amax(1) == flat.amin(1)).numpy())
    np.testing.assert_array_equal(result.labels, data.labels.numpy())


def test_per_class_summary_and_shards(setup):
    model, data, result = setup
    rows = result.per_class()
    assert sum(r["count"] for r in rows) == len(result) == 24
    for r in rows:
        sel = result.labels == result.classes.index(r["class"])
        assert r["deletion_auc"] == pytest.approx(float(result.deletion[sel].mean()))
        assert r["degenerate"] == pytest.approx(float(result.degenerate[sel].mean()))
    parts = [audit(model, data.subset(list(range(a, b))), steps=8, batch_size=8) for a, b in ((0, 8), (8, 24))]
    merged = merge(parts)
    for k in ("indices", "targets", "deletion", "insertion", "degenerate"):
        np.testing.assert_array_equal(getattr(merged, k), getattr(result, k))
    json.dumps(result.to_dict())  # JSON-able
    with pytest.raises(ConvscopeError, match="steps"):
        audit(model, data, steps=0)


def test_cli_audit_prints_the_table_and_writes_json(tmp_path, capsys):
    from convscope.cli.main import main

    out = tmp_path / "audit.json"
    assert (
        main(
            [
                "audit",
                "--data",
                "digits",
                "--limit",
                "16",
                "--steps",
                "6",
                "--batch-size",
                "8",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["method"] == "gradcam" and report["count"] == 16
    assert f"{report['deletion_auc']:.4f}" in printed.splitlines()[-2]
