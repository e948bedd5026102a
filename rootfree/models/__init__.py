"""Models from registries: image classifiers adapted to a dataset's channels, image size and
classes (``MODELS``), and language models sized by a vocabulary (``LM_MODELS``)."""

from rootfree.models.lm import LM_MODELS, create_language_model
from rootfree.models.registry import MODELS, create_model

__all__ = ["LM_MODELS", "MODELS", "create_language_model", "create_model"]
