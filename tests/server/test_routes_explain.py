"""The Why? and What does it look for? API: every number equals a direct call of
convscope.explain / convscope.features on the same model and input; jobs report progress
and cancel over HTTP; bad methods, layers, classes and channels are 4xx before any job."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

from convscope import explain, features
from convscope.data.base import ImageDataset
from convscope.explain.interpret import describe_metrics
from convscope.render.heatmap import overlay
from convscope.server.feature_views import data_choice

from live_server import wait_for_job
from server_helpers import digits_dataset

LAYER = "conv_2_2"


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return digits_dataset()


@pytest.fixture(scope="module")
def app(registry, digits, tmp_path_factory):
    from convscope.server import create_app

    app = create_app(registry=registry)
    app.state.explain.cache_dir = tmp_path_factory.mktemp("features")
    app.state.explain.data = digits
    return app


@pytest.fixture(scope="module")
def api(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def ref(registry):
    model = registry.entry("default").model
    return model, registry.input_batch("default", "sample-3")


def floats(packed: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(packed["data"]), "<f4").reshape(packed["shape"])


def picture(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def test_methods_and_options_come_from_the_model(api, ref):
    model, x = ref
    assert api.get("/api/explain/methods").json()["methods"] == explain.method_info()
    o = api.get("/api/models/default/explain/options", params={"image": "sample-3"}).json()
    # spatial outputs of the Sequential's children, run one at a time
    spatial, h = [], x
    with torch.no_grad():
        for name, child in model.net.named_children():
            h = child(h)
            if h.dim() == 4 and h.shape[2] * h.shape[3] > 1:
                spatial.append((name, list(h.shape[1:])))
    assert [(lay["name"], lay["shape"]) for lay in o["layers"]] == spatial
    assert o["default_layer"] == explain.GradCAM(model)(x).layer == "max_pool_2"
    assert o["predicted"] == int(model.net(x).argmax()) and o["classes"] == model.classes


def test_resnet_layers_include_blocks_and_the_default_is_the_methods(api, registry):
    model = registry.entry("resnet").model
    x = registry.input_batch("resnet", "sample-0")
    o = api.get("/api/models/resnet/explain/options").json()
    names = [lay["name"] for lay in o["layers"]]
    assert {"layer3", "layer3.1", "layer2.0.conv1"} <= set(names)
    assert "layer4" not in names  # 1x1 at a 32x32 input: nothing spatial to show
    assert o["default_layer"] == explain.GradCAM(model)(x).layer


@pytest.mark.parametrize(
    "method, layer, target",
    [("gradcam", None, None), ("gradcam", "conv_2_1", 3), ("saliency", None, 7), ("occlusion", None, None)],
)
def test_attribution_and_metrics_equal_direct_calls(api, ref, method, layer, target):
    model, x = ref
    params = {"image": "sample-3", "method": method, "layer": layer, "target": target}
    r = api.get("/api/models/default/explain", params={k: v for k, v in params.items() if v is not None}).json()
    options = {"occlusion": {"window": 3, "stride": 1}}.get(method, {})  # 1/8 of the 28 px side, half of it
    direct = explain.get_method(method)(model, layer, **options)(x, target)
    expected = direct.numpy()[0]
    assert r["target"] == int(direct.targets[0]) and r["layer"] == (direct.layer if method == "gradcam" else None)
    np.testing.assert_allclose(floats(r["map"]), expected, rtol=1e-5, atol=1e-7)
    assert r["raw_shape"] == list(direct.raw.shape[1:])
    with torch.no_grad():
        assert r["probability"] == pytest.approx(float(model.net(x).softmax(-1)[0, r["target"]]), rel=1e-5)
    assert np.array_equal(picture(r["overlay"]), overlay(model.to_display(x[0]), expected))
    top = float(np.percentile(np.abs(expected), 99.5)) or float(np.abs(expected).max())
    assert r["range"][1] == pytest.approx(top, rel=1e-6)
    d = explain.deletion(model, x, direct, steps=32)
    i = explain.insertion(model, x, direct, steps=32)
    c = explain.confidence_change(model, x, direct)
    m = r["metrics"]
    assert m["deletion_auc"] == pytest.approx(float(d.auc[0]), rel=1e-6)
    assert m["insertion_auc"] == pytest.approx(float(i.auc[0]), rel=1e-6)
    np.testing.assert_allclose(m["deletion"], d.scores[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(m["fractions"], d.fractions.numpy())
    assert m["average_drop"] == pytest.approx(c.average_drop, rel=1e-6)
    assert m["increase_in_confidence"] == pytest.approx(c.increase_in_confidence)
    assert m["reading"] == describe_metrics(d.fractions, d.scores[0], i.scores[0])  # the sentence the page shows


@pytest.mark.parametrize(
    "params, status, words",
    [
        ({"method": "gradcamm"}, 404, "gradcamm"),
        ({"layer": "conv_9"}, 404, "conv_9"),
        ({"layer": "flatten"}, 400, "spatial"),
        ({"target": 10}, 400, "out of range"),
        ({"target": -1}, 400, "out of range"),
        ({"image": "sample-99"}, 404, "sample-99"),
    ],
)
def test_bad_requests_are_4xx_before_any_job(api, app, params, status, words):
    before = len(app.state.jobs)
    for call in (api.get, api.post):
        r = call("/api/models/default/explain", params=params)
        assert r.status_code == status and words in r.json()["detail"], r.text
    assert api.post("/api/models/default/sanity", params=params).status_code == status
    assert len(app.state.jobs) == before
    assert api.get("/api/models/nope/explain").status_code == 404
    assert api.get("/api/jobs/job-none").status_code == 404


def test_explain_job_progress_and_result(api):
    params = {"image": "sample-5", "method": "gradcam++"}
    job = wait_for_job(api, api.post("/api/models/default/explain", params=params).json())
    assert job["status"] == "done" and job["done"] == job["total"] == 1000
    assert (
        job["result"]["metrics"]["deletion_auc"]
        == api.get("/api/models/default/explain", params=params).json()["metrics"]["deletion_auc"]
    )


def test_sanity_job_equals_the_direct_check(api, ref):
    model, x = ref
    job = wait_for_job(
        api,
        api.post(
            "/api/models/default/sanity", params={"image": "sample-3", "method": "gradcam,saliency", "max_steps": 3}
        ).json(),
    )
    assert job["status"] == "done" and job["done"] == job["total"] == 4, job
    r = job["result"]
    direct = explain.sanity_check(model, x, methods=["gradcam", "saliency"], max_steps=3)
    assert r["steps"] == ["(original)"] + direct.steps == ["(original)", "output", "conv_2_2", "conv_2_1"]
    for m in ("gradcam", "saliency"):
        np.testing.assert_allclose(r["spearman"][m], direct.spearman[m][:, 0].numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r["ssim"][m], direct.ssim[m][:, 0].numpy(), rtol=1e-5, atol=1e-6)
    assert r["spearman"]["gradcam"][0] == pytest.approx(1.0)
    assert [{k: v[k] for k in ("method", "passed", "reason")} for v in r["verdicts"]] == [
        {"method": m, "passed": ok, "reason": why} for m, (ok, why) in direct.verdicts.items()
    ]
    assert [v["reason_i18n"]["text"] for v in r["verdicts"]] == [why for _, why in direct.verdicts.values()]
    assert picture(r["figure"]).shape[1] > 400


def test_kernels_are_the_weights(api, ref):
    model, _ = ref
    k = api.get("/api/models/default/layers/conv_1_1/kernels", params={"channel": 4}).json()
    w = model.net.conv_1_1.weight[4].detach()
    assert k["as_image"] and k["first"] and k["shape"] == [1, 3, 3]
    np.testing.assert_allclose(k["weight"], w.numpy(), rtol=1e-6)
    assert k["bias"] == pytest.approx(float(model.net.conv_1_1.bias[4].detach()))
    assert k["scale"] == pytest.approx(float(w.abs().max()))
    k = api.get(f"/api/models/default/layers/{LAYER}/kernels", params={"channel": 2}).json()
    assert not k["as_image"] and k["shape"] == [10, 3, 3]
    assert k["scale"] == pytest.approx(float(model.net.conv_2_2.weight[2].abs().max()))
    assert picture(k["image"]).ndim == 3
    assert api.get("/api/models/default/layers/relu_1_1/kernels").status_code == 400
    assert api.get(f"/api/models/default/layers/{LAYER}/kernels", params={"channel": 10}).status_code == 404
    assert api.get("/api/models/default/layers/conv_7/kernels").status_code == 404


def test_visualization_equals_the_direct_call_and_is_cached_on_disk(api, app, registry, ref):
    model, _ = ref
    params = {"channel": 2, "steps": 12}
    url = f"/api/models/default/layers/{LAYER}/visualization"
    assert api.get(url, params=params).json()["cached"] is False
    job = wait_for_job(api, api.post(url, params=params).json())
    assert job["status"] == "done" and job["done"] == job["total"] == 12
    r = job["result"]
    direct = features.visualize(model, LAYER, [2], steps=12)
    assert not r["cached"] and np.array_equal(picture(r["image"]), np.repeat(direct.images[0], 3, -1))
    assert r["value"] == pytest.approx(float(direct.values[0]), rel=1e-5)
    assert len(list(app.state.explain.cache().root.rglob("*.npz"))) == 1
    # a new server on the same cache folder answers from disk without optimising
    from fastapi.testclient import TestClient

    from convscope.server import create_app

    fresh = create_app(registry=registry)
    fresh.state.explain.cache_dir = app.state.explain.cache_dir
    with TestClient(fresh) as c:
        again = c.get(url, params=params).json()
    assert again["cached"] is True and again["image"] == r["image"] and again["value"] == r["value"]
    assert api.post(url, params={"channel": 10}).status_code == 404
    assert api.post("/api/models/default/layers/nope/visualization").status_code == 404


def test_a_job_is_cancelled_over_http(api):
    url = f"/api/models/default/layers/{LAYER}/visualization"
    job = api.post(url, params={"channel": 5, "steps": 4000}).json()
    end = time.time() + 60
    while job["done"] == 0:  # running and stepping
        assert time.time() < end, job
        time.sleep(0.05)
        job = api.get(f"/api/jobs/{job['id']}").json()
    assert api.delete(f"/api/jobs/{job['id']}").json()["id"] == job["id"]
    job = wait_for_job(api, job)
    assert job["status"] == "cancelled" and job["done"] < job["total"] == 4000 and "result" not in job
    assert api.get(url, params={"channel": 5, "steps": 4000}).json()["cached"] is False


def test_top_examples_equal_the_direct_pass(api, ref, digits):
    model, _ = ref
    assert api.get("/api/models/default/features").json()["dataset"] == "digits-20"
    job = wait_for_job(
        api, api.post(f"/api/models/default/layers/{LAYER}/examples", params={"channel": 1, "k": 3}).json()
    )
    assert job["status"] == "done", job
    r = job["result"]
    direct = features.top_examples(model, digits, LAYER, k=3)
    assert r["indices"] == direct.indices[1].tolist() and r["seen"] == 20
    np.testing.assert_allclose(r["values"], direct.values[1], rtol=1e-6)
    assert r["labels"] == [str(int(digits.labels[i])) for i in direct.indices[1]]
    assert picture(r["image"]).shape[1] >= 3 * 64


def test_dataset_choice(api, registry):
    default, functional = registry.entry("default").model, registry.entry("functional").model
    assert data_choice(default, "auto").name == "mnist" and data_choice(functional, "auto").name is None
    assert data_choice(default, None).name is None and data_choice(functional, "cifar10").name == "cifar10"
    # a colour model and the automatic choice: no dataset, a clear 400
    app = api.app
    saved, app.state.explain.data = app.state.explain.data, "auto"
    try:
        assert api.get("/api/models/functional/features").json()["dataset"] is None
        r = api.post("/api/models/functional/layers/conv1/examples")
        assert r.status_code == 400 and "--data" in r.json()["detail"]
    finally:
        app.state.explain.data = saved


def test_explain_get_and_post_document_one_parameter_set(api, app):
    """GET and POST /explain take one declared set (routes_explain.ExplainQuery), /sanity the same
    attribution fields plus max_steps, and OpenAPI lists each in full; bad values are 422 on each."""
    paths = app.openapi()["paths"]
    explain, sanity = paths["/api/models/{model}/explain"], paths["/api/models/{model}/sanity"]["post"]
    assert explain["get"]["parameters"] == explain["post"]["parameters"]
    assert [(p["name"], p["in"]) for p in explain["get"]["parameters"]] == [
        ("model", "path"),
        *[(name, "query") for name in ("image", "method", "layer", "target", "metrics")],
    ]
    assert sanity["parameters"][:5] == explain["get"]["parameters"][:5]
    assert (
        sanity["parameters"][5]["name"] == "max_steps" and sanity["parameters"][5]["schema"]["anyOf"][0]["minimum"] == 1
    )
    for call, url, params in [
        (api.get, "/api/models/default/explain", {"target": "one"}),
        (api.post, "/api/models/default/explain", {"metrics": "maybe"}),
        (api.post, "/api/models/default/sanity", {"max_steps": 0}),
    ]:
        assert call(url, params=params).status_code == 422
