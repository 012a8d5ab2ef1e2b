"""The explorer's JSON/binary API, checked against plain PyTorch computations."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from convscope.server.encoding import decode_array, encode_array

from server_helpers import png, seq_outputs


@pytest.fixture(scope="module")
def default_ref(registry):
    model = registry.entry("default").model
    x = registry.input_batch("default", "sample-3")
    return model, x, seq_outputs(model.net, x)


def test_models_info_and_samples(client):
    models = client.get("/api/models").json()
    assert [m["name"] for m in models["models"]] == ["default", "functional", "resnet"]
    assert models["default"] == "default"
    info = client.get("/api/models/default").json()
    assert info["input_shape"] == [1, 28, 28] and info["classes"] == [str(i) for i in range(10)]
    assert [s["label"] for s in info["samples"]] == [f"digit {i}" for i in range(10)]
    photos = [s["label"] for s in client.get("/api/models/functional/samples").json()]
    assert photos == ["coffee", "chelsea", "astronaut", "rocket"]
    img = client.get("/api/models/default/images/sample-3.png")
    assert img.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(img.content)).size == (28, 28)


def test_trace_layers_and_prediction_match_pytorch(client, default_ref):
    model, x, ref = default_ref
    t = client.get("/api/models/default/trace", params={"image": "sample-3"}).json()
    names = [lay["name"] for lay in t["layers"]]
    assert names == list(ref)  # input + every child, in order
    for layer in t["layers"]:
        out = ref[layer["name"]][0]
        assert layer["shape"] == list(out.shape)
        assert layer["stats"]["min"] == pytest.approx(float(out.min()), abs=1e-6)
        assert layer["stats"]["max"] == pytest.approx(float(out.max()), abs=1e-6)
    conv = next(lay for lay in t["layers"] if lay["kind"] == "conv")
    assert conv["params"]["kernel_size"] == [3, 3] and conv["connect"] == {"mode": "all"}
    probs = ref[names[-1]][0].softmax(-1)
    top = t["prediction"]["top"]
    assert top[0]["index"] == int(probs.argmax()) and top[0]["prob"] == pytest.approx(float(probs.max()), abs=1e-6)
    assert [p["prob"] for p in top] == sorted((p["prob"] for p in top), reverse=True)


def test_activations_binary_pages_equal_outputs(client, default_ref):
    _, _, ref = default_ref
    name = next(n for n in ref if n.startswith("conv"))
    full = ref[name][0].numpy()
    r = client.get(
        f"/api/models/default/layers/{name}/activations",
        params={"image": "sample-3", "start": 2, "count": 3, "dtype": "float32"},
    )
    assert r.headers["content-type"] == "application/octet-stream"
    header, data = decode_array(r.content)
    assert header["start"] == 2 and header["channels"] == full.shape[0]
    np.testing.assert_array_equal(data, full[2:5])
    np.testing.assert_allclose(header["ch_min"], full[2:5].reshape(3, -1).min(1), rtol=1e-6)
    _, half = decode_array(
        client.get(
            f"/api/models/default/layers/{name}/activations", params={"image": "sample-3", "dtype": "float16"}
        ).content
    )
    assert half.dtype == np.float16 and half.shape == full.shape
    np.testing.assert_allclose(half.astype(np.float32), full, rtol=1e-3, atol=1e-3)
    assert len(r.content) < full[2:5].nbytes + 400  # compact: the data plus a small header


def test_many_pages_in_one_response(client, default_ref):
    from convscope.server.encoding import decode_many

    _, _, ref = default_ref
    names = [n for n in ref if n != "input"][:3]
    pages = "|".join(f"{n}:1:2:float32" for n in names) + "|flatten:0:5:float16"
    r = client.get("/api/models/default/activations", params={"image": "sample-3", "pages": pages})
    got = decode_many(r.content)
    assert [h["layer"] for h, _ in got] == names + ["flatten"]
    for (_, a), n in zip(got, names):
        np.testing.assert_array_equal(a, ref[n][0, 1:3].numpy())
    np.testing.assert_allclose(got[-1][1], ref["flatten"][0].numpy(), rtol=1e-3, atol=1e-3)  # 1-D: whole layer
    bad = client.get("/api/models/default/activations", params={"image": "sample-3", "pages": "conv_1_1:0:0:float32"})
    assert bad.status_code == 400 and "count" in bad.json()["detail"]
    missing = client.get("/api/models/default/activations", params={"image": "sample-3", "pages": "nope:0:1:float32"})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_conv_detail_numbers_equal_pytorch(client, default_ref):
    model, _, ref = default_ref
    names = list(ref)
    name = [n for n in names if n.startswith("conv")][1]  # a conv reading several channels
    conv = dict(model.net.named_children())[name]
    x_in = ref[names[names.index(name) - 1]][0]
    c, y, x = 4, 5, 7
    d = client.get(
        f"/api/models/default/layers/{name}/detail",
        params={"image": "sample-3", "channel": c, "y": y, "x": x, "count": 4},
    ).json()
    assert d["view"] == "conv" and d["page"] == {"start": 0, "count": 4, "total": conv.in_channels}
    pos = d["position"]
    patch = x_in[:, y : y + 3, x : x + 3]  # stride 1, no padding
    w = conv.weight[c].detach()
    assert pos["value"] == pytest.approx(float((patch * w).sum() + conv.bias[c].detach()), abs=1e-5)
    assert pos["trace_value"] == pytest.approx(float(ref[name][0, c, y, x]), abs=1e-6)
    assert pos["bias"] == pytest.approx(float(conv.bias[c].detach()))
    for ch in pos["channels"]:
        i = ch["index"]
        np.testing.assert_allclose(ch["patch"], patch[i].numpy(), atol=1e-6)
        np.testing.assert_allclose(ch["products"], (patch[i] * w[i]).numpy(), atol=1e-6)
        assert ch["sum"] == pytest.approx(float((patch[i] * w[i]).sum()), abs=1e-5)
    # elastic view: each intermediate map is input channel i convolved with kernel slice i
    for ch in d["channels"]:
        i = ch["index"]
        mine = F.conv2d(x_in[i][None, None], w[i][None, None])[0, 0].numpy()
        got = np.frombuffer(__import__("base64").b64decode(ch["intermediate"]["data"]), "<f4").reshape(mine.shape)
        np.testing.assert_allclose(got, mine, atol=1e-5)
    out = np.frombuffer(__import__("base64").b64decode(d["output"]["data"]), "<f4").reshape(d["output"]["shape"])
    np.testing.assert_allclose(out, ref[name][0, c].numpy(), atol=1e-5)
    only = client.get(
        f"/api/models/default/layers/{name}/detail",
        params={"image": "sample-3", "channel": c, "y": y, "x": x, "maps": 0, "start": 1, "count": 1},
    ).json()
    assert set(only) == {"view", "position"} and [ch["index"] for ch in only["position"]["channels"]] == [1]


def test_pool_detail_window_and_argmax(client, default_ref):
    _, _, ref = default_ref
    names = list(ref)
    name = next(n for n in names if "pool" in n)
    x_in = ref[names[names.index(name) - 1]][0]
    c, y, x = 1, 2, 3
    pos = client.get(
        f"/api/models/default/layers/{name}/detail", params={"image": "sample-3", "channel": c, "y": y, "x": x}
    ).json()["position"]
    window = x_in[c, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2]
    np.testing.assert_allclose(pos["values"], window.numpy(), atol=1e-7)
    assert pos["value"] == pytest.approx(float(window.max())) == pos["trace_value"]
    r, col = divmod(int(window.flatten().argmax()), 2)
    assert pos["argmax"] == [2 * y + r, 2 * x + col]
    assert pos["window"] == {"top": 2 * y, "left": 2 * x, "height": 2, "width": 2}


def test_average_pool_window_and_divisor(client, registry):
    t = client.get("/api/models/functional/trace", params={"image": "sample-2"}).json()
    pool = next(lay for lay in t["layers"] if lay["kind"] == "avgpool")
    te = registry.trace("functional", "sample-2")
    x_in = te.record(pool["inputs"][0]).output[0]
    pos = client.get(
        f"/api/models/functional/layers/{pool['name']}/detail",
        params={"image": "sample-2", "channel": 9, "y": 1, "x": 2},
    ).json()["position"]
    window = x_in[9, 2:4, 4:6]
    np.testing.assert_allclose(pos["values"], window.numpy(), atol=1e-6)
    assert pos["value"] == pytest.approx(float(window.mean()), abs=1e-6)
    assert pos["trace_value"] == pytest.approx(pos["value"], abs=1e-6) and pos["argmax"] is None
    assert "/ 4" in pos["formula"]


def test_linear_and_softmax_details(client, default_ref):
    model, _, ref = default_ref
    names = list(ref)
    last = names[-1]
    lin = dict(model.net.named_children())[last]
    x_in = ref[names[-2]][0]
    d = client.get(f"/api/models/default/layers/{last}/detail", params={"image": "sample-3", "channel": 7}).json()
    prods = (lin.weight[7] * x_in).detach()
    assert d["view"] == "linear" and d["inputs"] == x_in.numel()
    assert d["value"] == pytest.approx(float(ref[last][0, 7]), abs=1e-5) and d["trace_value"] == pytest.approx(
        d["value"], abs=1e-5
    )
    assert d["positive"] == pytest.approx(float(prods[prods > 0].sum()), abs=1e-5)
    best = d["top"][0]
    assert abs(best["product"]) == pytest.approx(float(prods.abs().max()), abs=1e-6)
    assert best["product"] == pytest.approx(best["w"] * best["x"], abs=1e-6)
    assert len(best["source"]) == 3  # the flatten before it maps the index back to (c, h, w)
    s = client.get("/api/models/default/softmax", params={"image": "sample-3"}).json()
    logits = ref[last][0].double()
    assert s["sum_exp"] == pytest.approx(float(logits.exp().sum()), rel=1e-6)
    for row in s["rows"]:
        assert row["prob"] == pytest.approx(float(logits.softmax(-1)[row["index"]]), abs=1e-6)
        assert row["exp"] == pytest.approx(float(logits[row["index"]].exp()), rel=1e-6)


def test_batchnorm_add_concat_on_branching_nets(client, registry):
    bn = registry.entry("resnet").model.net.bn1
    d = client.get("/api/models/resnet/layers/bn1/detail", params={"image": "sample-0", "channel": 5}).json()
    scale = float(bn.weight[5] / torch.sqrt(bn.running_var[5] + bn.eps))
    assert d["view"] == "batchnorm" and d["scale"] == pytest.approx(scale, rel=1e-5)
    assert d["shift"] == pytest.approx(float(bn.bias[5] - bn.running_mean[5] * scale), rel=1e-5, abs=1e-6)
    t = client.get("/api/models/resnet/trace", params={"image": "sample-0"}).json()
    adds = [lay for lay in t["layers"] if lay["kind"] == "add"]
    assert len(adds) == 8 and all(len(lay["inputs"]) == 2 for lay in adds)
    assert adds[0]["group"] == "layer1.0" and adds[0]["connect"] == {"mode": "same"}
    g = client.get(
        f"/api/models/resnet/layers/{adds[0]['name']}/detail", params={"image": "sample-0", "channel": 3}
    ).json()
    maps = [
        np.frombuffer(__import__("base64").b64decode(m["data"]), "<f4")
        for m in [i["map"] for i in g["inputs"]] + [g["output"]]
    ]
    np.testing.assert_allclose(maps[0] + maps[1], maps[2], atol=1e-5)
    f = client.get("/api/models/functional/trace", params={"image": "sample-1"}).json()
    cat = next(lay for lay in f["layers"] if lay["kind"] == "concat")
    assert cat["connect"] == {"mode": "concat", "offsets": [0, 8, 12]}


def test_summary_and_openapi(client, registry):
    s = client.get("/api/models/default/summary").json()
    net = registry.entry("default").model.net
    assert s["total_params"] == sum(p.numel() for p in net.parameters())
    conv = next(r for r in s["rows"] if r["kind"] == "conv")
    layer = dict(net.named_children())[conv["name"]]
    h, w = conv["shape"][1:]
    assert conv["macs"] == layer.out_channels * h * w * layer.in_channels * 9
    spec = client.get("/openapi.json").json()
    assert "/api/models/{model}/layers/{layer}/detail" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_playground_valid_and_invalid(client, default_ref):
    _, _, ref = default_ref
    layer = [n for n in ref if n.startswith("relu")][0]
    amap = ref[layer][0, 2]
    r = client.get(
        "/api/models/default/playground",
        params={
            "image": "sample-3",
            "layer": layer,
            "channel": 2,
            "crop": 9,
            "kernel": 3,
            "padding": 1,
            "stride": 2,
            "dilation": 1,
        },
    ).json()
    assert r["valid"] and r["output_size"] == (9 + 2 - 3) // 2 + 1 == 5
    top, left = r["crop_origin"]
    crop = amap[top : top + 9, left : left + 9]
    mine = F.conv2d(crop[None, None], torch.full((1, 1, 3, 3), 1 / 9), stride=2, padding=1)[0, 0]
    np.testing.assert_allclose(r["output"], mine.numpy(), atol=1e-6)
    bad = client.get(
        "/api/models/default/playground",
        params={"image": "sample-3", "layer": layer, "crop": 6, "kernel": 3, "stride": 2},
    ).json()
    assert not bad["valid"] and "stride 2 does not fit" in bad["problems"][0]
    assert bad["fitting_strides"] == [1, 3] and "output" not in bad
    big = client.get(
        "/api/models/default/playground",
        params={"image": "sample-3", "layer": layer, "crop": 4, "kernel": 3, "dilation": 3},
    ).json()
    assert not big["valid"] and "spans 7 pixels" in big["problems"][0]


def test_upload_traces_the_uploaded_image(client, registry):
    model = registry.entry("default").model
    digit = np.zeros((40, 40), np.uint8)
    digit[8:32, 18:22] = 255  # a one
    data = png(digit)
    image = client.post("/api/models/default/images", files={"file": ("one.png", data, "image/png")}).json()["image"]
    assert image.startswith("upload-")
    t = client.get("/api/models/default/trace", params={"image": image}).json()
    expected = model.predict(data, top=1)[0][0]
    assert t["prediction"]["top"][0]["name"] == expected[0]
    assert t["prediction"]["top"][0]["prob"] == pytest.approx(expected[1], abs=1e-6)
    again = client.post("/api/models/default/images", files={"file": ("same.png", data, "image/png")}).json()
    assert again["image"] == image  # content-addressed


@pytest.mark.parametrize(
    "data, status, words",
    [
        (b"this is not an image", 400, "not an image"),
        (b"", 400, "empty"),
        (png(np.random.default_rng(0).integers(0, 255, (30, 30), dtype=np.uint8))[:400], 400, "damaged"),
    ],
)
def test_bad_uploads_are_clear_4xx(client, data, status, words):
    r = client.post("/api/models/default/images", files={"file": ("x.png", data, "image/png")})
    assert r.status_code == status and words in r.json()["detail"]


def test_enormous_uploads_are_413(client, registry, monkeypatch):
    buf = io.BytesIO()
    Image.new("L", (8000, 6000)).save(buf, format="PNG")  # 48 megapixels, a few kB compressed
    r = client.post("/api/models/default/images", files={"file": ("big.png", buf.getvalue(), "image/png")})
    assert r.status_code == 413 and "megapixels" in r.json()["detail"]
    monkeypatch.setattr(registry.uploads, "max_bytes", 1000)
    r = client.post("/api/models/default/images", files={"file": ("x.png", b"\x89PNG" + b"0" * 2000, "image/png")})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_unknown_names_are_404_with_the_name(client):
    r = client.get("/api/models/nosuch/trace")
    assert r.status_code == 404 and "nosuch" in r.json()["detail"]
    r = client.get("/api/models/default/layers/nolayer/activations")
    assert r.status_code == 404 and "nolayer" in r.json()["detail"]
    r = client.get("/api/models/default/trace", params={"image": "sample-99"})
    assert r.status_code == 404 and "sample-99" in r.json()["detail"]
    r = client.get("/api/models/default/trace", params={"image": "upload-feed"})
    assert r.status_code == 404 and "upload-feed" in r.json()["detail"]
    r = client.get("/api/models/default/layers/conv_1_1/detail", params={"channel": 999})
    assert r.status_code in (400, 404) and "999" in r.json()["detail"]
    r = client.get("/api/models/default/layers/conv_1_1/detail", params={"y": 500, "x": 0})
    assert r.status_code == 400 and "outside" in r.json()["detail"]


def test_static_front_end_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/js/main.js"' in page.text
    js = client.get("/static/js/main.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "http://" not in js.text and "https://" not in js.text  # nothing from a CDN
    assert client.get("/static/../app.py").status_code == 404


def test_encoding_round_trip_and_alignment():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    blob = encode_array(a, "float32", layer="x")
    header, back = decode_array(blob)
    assert header["layer"] == "x" and (4 + int.from_bytes(blob[:4], "little")) % 8 == 0
    np.testing.assert_array_equal(back, a)


def test_upload_store_is_bounded_by_pixels():
    from convscope.server.images import UploadStore

    store = UploadStore(capacity=10, max_pixels=5000)
    a = store.add(png(np.zeros((50, 50), np.uint8)))
    b = store.add(png(np.full((50, 60), 9, np.uint8)))
    with pytest.raises(Exception, match="unknown image"):
        store.get(a)
    assert store.get(b).size == (60, 50)


@pytest.mark.parametrize(
    "fmt, mode", [("GIF", "P"), ("TIFF", "I;16"), ("WEBP", "RGB"), ("BMP", "RGB"), ("JPEG", "CMYK"), ("PNG", "RGBA")]
)
def test_uploads_in_other_pillow_formats(client, fmt, mode):
    rng = np.random.default_rng(1)
    base = Image.fromarray(rng.integers(0, 255, (36, 30, 3), dtype=np.uint8))
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65535, (36, 30), dtype=np.uint16))
    elif mode == "P":
        img = base.convert("P")
    else:
        img = base.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    r = client.post("/api/models/functional/images", files={"file": (f"x.{fmt.lower()}", buf.getvalue())})
    assert r.status_code == 200, r.text
    t = client.get("/api/models/functional/trace", params={"image": r.json()["image"]})
    assert t.status_code == 200 and len(t.json()["prediction"]["top"]) == 10


def test_a_model_without_class_scores(registry):
    from fastapi.testclient import TestClient

    from convscope.server import Registry, create_app

    from server_helpers import small_loader

    c = TestClient(create_app(registry=Registry(["fcn"], loader=small_loader)))
    t = c.get("/api/models/fcn/trace", params={"image": "sample-0"}).json()
    assert t["prediction"] == {"classes": 0, "top": []} and t["layers"][-1]["shape"] == [2, 32, 32]
    r = c.get("/api/models/fcn/softmax", params={"image": "sample-0"})
    assert r.status_code == 400 and "class scores" in r.json()["detail"]


def test_model_names_from_specs():
    from convscope.server.registry import spec_name

    assert spec_name("default") == "default" and spec_name("efficientnet-lite0") == "efficientnet-lite0"
    assert spec_name("runs/mnist/best.pt") == "mnist" and spec_name("nets/tiny.pt") == "tiny"
    assert spec_name("../fixtures/cnn-explainer/model.json") == "cnn-explainer"
    assert spec_name("mypkg.nets:make_net@w.pt") == "make_net"


def test_cnn_explainers_own_model_matches_tfjs(cnn_explainer_dir, cnn_explainer_reference):
    """CNN Explainer's Tiny VGG (TF.js model.json) in the explorer gives TF.js's probabilities."""

    from fastapi.testclient import TestClient

    from convscope.server import create_app

    ref = cnn_explainer_reference
    c = TestClient(create_app([str(cnn_explainer_dir / "model.json")]))
    assert c.get("/api/models").json()["default"] == "cnn-explainer"
    for name in ("espresso_1.jpeg", "koala_1.jpeg", "bus_1.jpeg"):
        data = (cnn_explainer_dir / "images" / name).read_bytes()
        image = c.post("/api/models/cnn-explainer/images", files={"file": (name, data)}).json()["image"]
        rows = c.get("/api/models/cnn-explainer/softmax", params={"image": image}).json()["rows"]
        expected = ref["images"][name]["pillow_decode"]["probs"]  # TF.js on the same (Pillow) pixels
        for row in rows:
            assert row["prob"] == pytest.approx(expected[row["index"]], abs=1e-5)
        assert rows[0]["index"] == ref["images"][name]["pillow_decode"]["top_index"]


def test_a_view_router_serves_from_a_context_in_ones_own_app(registry):
    """Each view module is ``router(ctx)`` over one ServerContext, so a view can be mounted in
    another FastAPI app; an image source registered on the registry serves that app's views."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from convscope.server import routes_network
    from convscope.server.context import ServerContext
    from convscope.server.registry import Registry

    own = Registry(["default"], loader=registry._loader)
    pixels = np.full((28, 28), 200, np.uint8)
    own.add_image_source("mine-", lambda model, image: pixels)
    app = FastAPI()
    app.include_router(routes_network.router(ServerContext(own)))
    c = TestClient(app)
    assert c.get("/api/models").json()["default"] == "default"
    t = c.get("/api/models/default/trace", params={"image": "mine-1"})
    assert t.status_code == 200 and t.json()["image"] == "mine-1"
    direct = own.entry("default").model
    expected = direct.net(direct.batch(direct.preprocess(pixels))).softmax(-1)[0]
    top = t.json()["prediction"]["top"][0]
    assert top["prob"] == pytest.approx(float(expected[top["index"]]), abs=1e-5)
    for reserved in ("upload-", "sample-", "", "up"):
        with pytest.raises(ValueError):
            own.add_image_source(reserved, lambda model, image: pixels)
