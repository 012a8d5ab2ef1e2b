"""The static HTML overview: every layer listed, names escaped, no network."""

from __future__ import annotations

from convscope.render.overview import OverviewLayer, overview_html


def test_overview_lists_layers_escapes_and_links_files():
    layers = [
        OverviewLayer("input", "input", (3, 8, 8), thumbnail="thumbs/0.png"),
        OverviewLayer(
            "block<1>.conv",
            "conv",
            (4, 6, 6),
            op="Conv2d",
            inputs=["input"],
            params={"kernel_size": (3, 3), "stride": (1, 1)},
            param_count=112,
            stats={"min": -1.5, "max": 2.25, "mean": 0.125},
            figure="layers/1.png",
            kernels="kernels/1.png",
        ),
    ]
    page = overview_html("net & image", layers, predictions=[("cat", 0.75), ("dog", 0.25)], panel="prediction.png")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "block&lt;1&gt;.conv" in page and "block<1>" not in page and "net &amp; image" in page
    assert "4x6x6" in page and "kernel_size=(3, 3)" in page and "2.25" in page and "112" in page
    assert "cat: 75.00%" in page
    for ref in ("thumbs/0.png", "layers/1.png", "kernels/1.png", "prediction.png"):
        assert f"'{ref}'" in page
    assert "http" not in page and "<script" not in page
