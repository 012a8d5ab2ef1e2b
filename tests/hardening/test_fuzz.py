"""Property-based fuzzing: mutated image bytes and random API parameters never give a 5xx."""

from __future__ import annotations

from urllib.parse import quote

from hardening_helpers import encode, gradient_rgb
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

SEEDS = [
    encode(Image.fromarray(gradient_rgb(24, 24)), "PNG"),
    encode(Image.fromarray(gradient_rgb(24, 24)), "JPEG", quality=80),
    encode(Image.fromarray(gradient_rgb(16, 16)).convert("P"), "GIF"),
    encode(Image.fromarray(gradient_rgb(16, 16)), "BMP"),
    encode(Image.fromarray(gradient_rgb(16, 16)), "WEBP"),
    encode(Image.fromarray(gradient_rgb(16, 16)), "TIFF"),
]
LAYERS = ["conv_1_1", "relu_1_1", "max_pool_1", "conv_2_2", "flatten", "output", "input"]
NASTY = ["../", "..%2f", "%2e%2e%2f", "/etc/passwd", "..\\..\\", "\x00", "sample-", "upload-", "upload-../x",
         "sample-99999999999999999999", "sample--1", " ", "é", "💥", "a" * 300]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[i:i + draw(st.integers(1, 64))]
        elif op == "insert":
            data[i:i] = draw(st.binary(max_size=32))
        elif op == "dup":
            data[i:i] = data[i:i + draw(st.integers(1, 64))]
    return bytes(data)


names = st.one_of(st.sampled_from(NASTY), st.text(max_size=20))
models = st.one_of(st.sampled_from(["default", "tiny-vgg"]), names)
layers = st.one_of(st.sampled_from(LAYERS), names)
images = st.one_of(st.sampled_from(["sample-0", "sample-1", "sample-3", "sample-10"]), names)
ints = st.one_of(st.integers(-3, 40), st.integers(-2**70, 2**70), st.sampled_from(["x", "1.5", "", "nan", "1e9"]))
dtypes = st.one_of(st.sampled_from(["float16", "float32", "float64", "int8"]), st.text(max_size=8))


def no_5xx(r) -> None:
    event(f"HTTP {r.status_code}")
    assert r.status_code < 500, (r.request.method, str(r.request.url), r.status_code, r.text[:300])


@FUZZ
@given(data=mutated(), model=st.sampled_from(["default", "tiny-vgg"]))
def test_mutated_uploads(client, data, model):
    r = client.post(f"/api/models/{model}/images", files={"file": ("f", data, "image/png")})
    no_5xx(r)
    if r.status_code == 200:  # what was accepted can also be traced and shown
        image = r.json()["image"]
        no_5xx(client.get(f"/api/models/{model}/trace", params={"image": image}))
        no_5xx(client.get(f"/api/models/{model}/images/{image}.png"))


@FUZZ
@given(endpoint=st.sampled_from(["activations", "detail", "playground", "many", "trace", "softmax", "summary",
                                 "png", "info", "explain", "kernels", "visualization", "job"]),
       method=st.one_of(st.sampled_from(["gradcam", "saliency", "occlusion", "cam", "nope"]), names),
       model=models, layer=layers, image=images, channel=ints, x=ints, y=ints, start=ints, count=ints,
       dtype=dtypes, extra=ints)
def test_random_api_parameters(client, endpoint, method, model, layer, image, channel, x, y, start, count, dtype,
                               extra):
    m, lay = quote(model, safe=""), quote(layer, safe="")
    base = f"/api/models/{m}"
    if endpoint == "activations":
        r = client.get(f"{base}/layers/{lay}/activations",
                       params={"image": image, "start": start, "count": count, "dtype": dtype})
    elif endpoint == "detail":
        r = client.get(f"{base}/layers/{lay}/detail",
                       params={"image": image, "channel": channel, "x": x, "y": y, "start": start, "count": count})
    elif endpoint == "playground":
        r = client.get(f"{base}/playground", params={"layer": layer, "image": image, "channel": channel,
                                                     "crop": x, "kernel": y, "padding": start, "stride": count,
                                                     "dilation": extra, "kernel_type": dtype})
    elif endpoint == "many":
        r = client.get(f"{base}/activations", params={"image": image, "pages": f"{layer}:{start}:{count}:{dtype}"})
    elif endpoint == "softmax":
        r = client.get(f"{base}/softmax", params={"image": image, "channel": channel})
    elif endpoint == "png":
        r = client.get(f"{base}/images/{quote(image, safe='')}.png")
    elif endpoint == "info":
        r = client.get(base)
    elif endpoint == "explain":
        r = client.get(f"{base}/explain", params={"image": image, "method": method, "layer": layer,
                                                  "target": channel, "metrics": "false"})
    elif endpoint == "kernels":
        r = client.get(f"{base}/layers/{lay}/kernels", params={"channel": channel})
    elif endpoint == "visualization":
        r = client.get(f"{base}/layers/{lay}/visualization", params={"channel": channel, "steps": count})
    elif endpoint == "job":
        r = client.get(f"/api/jobs/{quote(image, safe='')}")
    else:
        r = client.get(f"{base}/{endpoint}", params={"image": image})
    no_5xx(r)
