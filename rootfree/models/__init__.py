"""Models adapted to a dataset's channels, image size and classes, from a registry."""

from rootfree.models.registry import MODELS, create_model

__all__ = ["MODELS", "create_model"]
