"""Every registered model, built from its own config, adapts to channels, image size and classes."""

from __future__ import annotations

import pytest
import torch

from rootfree.models import MODELS, create_model
from tests.train.helpers import compose_config


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("channels", [1, 3])
def test_model_from_its_config_maps_images_to_class_logits(name, channels):
    options = {k: v for k, v in compose_config(f"model={name}")["model"].items() if k != "name"}
    model = create_model(name, num_classes=7, channels=channels, image_size=32, **options)
    assert model(torch.randn(2, channels, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize(
    "name", ["small_cnn", "resnet", "vgg", "vit", "swin", "densenet", "convmixer"]
)
def test_fashion_mnist_sized_inputs(name):
    options = {k: v for k, v in compose_config(f"model={name}")["model"].items() if k != "name"}
    model = create_model(name, num_classes=10, channels=1, image_size=28, **options)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_bad_model_choices_are_named():
    with pytest.raises(ValueError, match=r"Unknown model 'resnext'; choose one of \['convmixer'"):
        create_model("resnext", 10, 3, 32)
    with pytest.raises(ValueError, match=r"Invalid ResNet depth: 20; choose one of \[18, 34, 50\]"):
        create_model("resnet", 10, 3, 32, depth=20)
    for name in ("focalnet", "gcvit"):
        with pytest.raises(ValueError, match="multiple of 32"):
            create_model(name, 10, 1, 28)
