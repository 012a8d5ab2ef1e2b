"""Models: the zoo, the shipped default, loading a user's model, and the safe checkpoint format."""

from .checkpoint import load_checkpoint, save_checkpoint
from .loading import default_checkpoint_path, load_model
from .model import Model, as_model, as_module
from .preprocessing import Preprocessing, open_image
from .zoo import ZOO, TinyVGG, TutorialCNN, build

__all__ = [
    "Model",
    "Preprocessing",
    "TinyVGG",
    "TutorialCNN",
    "ZOO",
    "as_model",
    "as_module",
    "build",
    "default_checkpoint_path",
    "load_checkpoint",
    "load_model",
    "open_image",
    "save_checkpoint",
]
