"""One EfficientNet-Lite0 trace of a real photo, shared by the trace and details tests."""

from __future__ import annotations

import pytest
from PIL import Image

from convscope.trace import Trace, trace


@pytest.fixture(scope="session")
def efficientnet_trace(efficientnet, photo_coffee) -> Trace:
    return trace(efficientnet, Image.fromarray(photo_coffee))
