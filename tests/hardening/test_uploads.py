"""Uploads: every kind of bad or unusual image either works or gets a clear 4xx, never a 500."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from hardening_helpers import encode, gradient_rgb, make_registry

URL = "/api/models/{}/images"


def upload(client, data: bytes, model: str = "tiny-vgg", name: str = "x"):
    return client.post(URL.format(model), files={"file": (name, data, "application/octet-stream")})


def png_header_only(width: int, height: int, mode_bits: tuple[int, int] = (8, 2)) -> bytes:
    """A PNG whose IHDR claims ``width x height`` but holds one tiny IDAT: decoding it would be huge."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, *mode_bits, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def expected_input(registry, model: str, pil: Image.Image) -> torch.Tensor:
    m = registry.entry(model).model
    return m.batch(m.preprocess(pil))


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"hello, I am not an image" * 10, "not an image"),
        (b"%PDF-1.4\n" + bytes(range(256)) * 4, "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, ""),  # a PNG signature and garbage
    ],
)
def test_not_images_are_400_with_a_reason(client, data, words):
    r = upload(client, data)
    assert r.status_code == 400, r.text
    assert words in r.json()["detail"]


def test_truncated_images_are_400(client):
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"):
        whole = encode(Image.fromarray(gradient_rgb(64, 64)), fmt)
        r = upload(client, whole[: len(whole) // 2])
        assert r.status_code == 400, (fmt, r.status_code, r.text)
        assert "image" in r.json()["detail"], fmt


def test_corrupted_bytes_never_500(client):
    whole = bytearray(encode(Image.fromarray(gradient_rgb(64, 64)), "JPEG", quality=90))
    rng = np.random.default_rng(1)
    for _ in range(20):
        bad = bytearray(whole)
        for i in rng.integers(0, len(bad), 8):
            bad[i] = int(rng.integers(0, 256))
        r = upload(client, bytes(bad))
        assert r.status_code in (200, 400, 413), r.text


@pytest.mark.parametrize(
    "w, h, status",
    [
        (8000, 8000, 413),  # 64 megapixels: over the explorer's own limit (40 MP), below Pillow's guard
        (50000, 50000, 413),  # 2.5 gigapixels: Pillow's decompression-bomb guard
        (1, 2**31 - 1, 413),
    ],
)
def test_huge_dimensions_refused_before_decoding(client, w, h, status):
    data = png_header_only(w, h)
    assert len(data) < 200
    start = time.perf_counter()
    r = upload(client, data)
    assert r.status_code == status, r.text
    assert "too large" in r.json()["detail"] or "megapixels" in r.json()["detail"]
    assert time.perf_counter() - start < 5  # refused from the header, nothing was allocated


def test_pillow_bomb_guard_is_on():
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS <= 200_000_000


def test_size_cap_is_configurable(client):
    from fastapi.testclient import TestClient

    from convscope.server import create_app
    from convscope.server.images import UploadStore
    from convscope.server.security import MULTIPART_SLACK

    small = UploadStore(max_bytes=2000)
    reg = make_registry(uploads=small)
    big = encode(Image.fromarray(gradient_rgb(64, 64)), "PNG")
    ok = encode(Image.fromarray(gradient_rgb(8, 8)), "PNG")
    assert 2000 < len(big) < 2000 + MULTIPART_SLACK and len(ok) < 2000  # big passes the body cap, not the file cap
    with TestClient(create_app(registry=reg)) as c:
        r = upload(c, big)
        assert r.status_code == 413 and "limit is" in r.json()["detail"], r.text
        assert upload(c, ok).status_code == 200
        # a request far over the cap is refused from its Content-Length, before the body is parsed
        r = upload(c, b"\0" * (200 * 1024))
        assert r.status_code == 413 and "--max-upload-mb" in r.json()["detail"], r.text
    assert len(small._items) == 1


def test_serve_max_upload_mb_reaches_the_store(fake_uvicorn):
    from convscope.cli.main import main

    assert main(["serve", "--model", "default", "--max-upload-mb", "0.5"]) == 0
    assert fake_uvicorn[0][0].state.registry.uploads.max_bytes == 512 * 1024
    assert main(["serve", "--model", "default", "--max-upload-mb", "-1"]) == 2


def test_animated_gif_and_apng_use_the_first_frame(client, registry):
    frames = [Image.fromarray(np.full((32, 32, 3), v, np.uint8)) for v in (30, 140, 250)]
    frames[0] = Image.fromarray(gradient_rgb(32, 32))
    for fmt in ("GIF", "PNG"):
        data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
        with Image.open(__import__("io").BytesIO(data)) as im:
            assert getattr(im, "n_frames", 1) == 3, fmt
            im.seek(0)
            first = im.convert("RGB")
        r = upload(client, data)
        assert r.status_code == 200, r.text
        got = registry.input_batch("tiny-vgg", r.json()["image"])
        torch.testing.assert_close(got, expected_input(registry, "tiny-vgg", first), rtol=0, atol=1e-6)
        assert client.get("/api/models/tiny-vgg/trace", params={"image": r.json()["image"]}).status_code == 200


def test_16_bit_png_is_rescaled_not_clipped(client, registry):
    grey8 = gradient_rgb(40, 48)[:, :, 0]
    grey16 = grey8.astype(np.uint16) * 257  # the same picture on a 0..65535 scale
    r16 = upload(client, encode(Image.fromarray(grey16), "PNG"), model="default")
    r8 = upload(client, encode(Image.fromarray(grey8), "PNG"), model="default")
    assert r16.status_code == 200 and r8.status_code == 200, (r16.text, r8.text)
    a = registry.input_batch("default", r16.json()["image"])
    b = registry.input_batch("default", r8.json()["image"])
    # the network sees the same picture (up to rounding in the resize), not a white or clipped one
    m = registry.entry("default").model
    one_level = 1.0 / float(m.preprocessing.std[0])
    assert (a - b).abs().max() <= 2 * one_level + 1e-6


def test_cmyk_jpeg_matches_its_rgb_conversion(client, registry):
    rgb = Image.fromarray(gradient_rgb(48, 48))
    data = encode(rgb.convert("CMYK"), "JPEG", quality=95)
    with Image.open(__import__("io").BytesIO(data)) as im:
        assert im.mode == "CMYK"
        as_rgb = im.convert("RGB")
    r = upload(client, data)
    assert r.status_code == 200, r.text
    got = registry.input_batch("tiny-vgg", r.json()["image"])
    torch.testing.assert_close(got, expected_input(registry, "tiny-vgg", as_rgb), rtol=0, atol=1e-5)


def _with_alpha(im: Image.Image) -> Image.Image:
    alpha = np.zeros(im.size[::-1], np.uint8)
    alpha[:, im.size[0] // 2 :] = 255
    im.putalpha(Image.fromarray(alpha))
    return im


MODES = {
    "P+transparency PNG": lambda b: encode(b.convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=0),
    "P GIF": lambda b: encode(b.convert("P", palette=Image.Palette.ADAPTIVE), "GIF", transparency=3),
    "LA PNG": lambda b: encode(_with_alpha(b.convert("L")), "PNG"),
    "RGBA PNG": lambda b: encode(_with_alpha(b.convert("RGB")), "PNG"),
    "RGBA WEBP": lambda b: encode(_with_alpha(b.convert("RGB")), "WEBP"),
    "1-bit PNG": lambda b: encode(b.convert("1"), "PNG"),
    "I 32-bit TIFF": lambda b: encode(b.convert("I"), "TIFF"),
    "F float TIFF": lambda b: encode(b.convert("F"), "TIFF"),
    "I;16 TIFF": lambda b: encode(Image.fromarray(np.asarray(b.convert("L")).astype(np.uint16) * 257), "TIFF"),
    "RGB BMP": lambda b: encode(b, "BMP"),
}


@pytest.mark.parametrize("kind", sorted(MODES))
def test_palette_alpha_and_other_modes_work(client, kind):
    data = MODES[kind](Image.fromarray(gradient_rgb(32, 32)))
    for model in ("default", "tiny-vgg"):
        r = upload(client, data, model=model)
        assert r.status_code == 200, (kind, model, r.text)
        t = client.get(f"/api/models/{model}/trace", params={"image": r.json()["image"]})
        assert t.status_code == 200, (kind, model, t.text)


def test_transparent_pixels_composite_on_white(client, registry):
    rgba = np.zeros((32, 32, 4), np.uint8)  # fully transparent black
    r = upload(client, encode(Image.fromarray(rgba), "PNG"))
    assert r.status_code == 200
    white = Image.fromarray(np.full((32, 32, 3), 255, np.uint8))
    torch.testing.assert_close(
        registry.input_batch("tiny-vgg", r.json()["image"]),
        expected_input(registry, "tiny-vgg", white),
        rtol=0,
        atol=1e-6,
    )


def test_bad_uploads_leave_no_stuck_worker(client):
    """After a burst of bad uploads the server still answers a normal request at once."""
    bad = [b"", b"junk" * 100, png_header_only(50000, 50000), encode(Image.fromarray(gradient_rgb()), "PNG")[:100]]
    for i in range(40):
        assert upload(client, bad[i % len(bad)]).status_code in (400, 413)
    start = time.perf_counter()
    r = client.get("/api/models/default/trace", params={"image": "sample-1"})
    assert r.status_code == 200 and time.perf_counter() - start < 20
    assert upload(client, encode(Image.fromarray(gradient_rgb()), "PNG")).status_code == 200
