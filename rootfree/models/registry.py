"""The model registry: ``create_model(name, num_classes, channels, image_size, **options)``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from rootfree.models.cnn import (
    RESNET_LAYOUTS,
    VGG,
    ConvMixer,
    ResNet,
    SmallCNN,
    densenet121_cifar,
)


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., nn.Module]
    family: str  # "cnn" or "vit"
    description: str
    choices: Mapping[str, tuple] = field(default_factory=dict)  # option -> its valid values


def _vit(
    num_classes,
    channels,
    image_size,
    patch_size=4,
    embed_dim=64,
    depth=4,
    num_heads=4,
    mlp_ratio=2.0,
    **kwargs,
):
    from timm.models.vision_transformer import VisionTransformer

    if image_size % patch_size:
        raise ValueError(
            f"Invalid patch_size: {patch_size} does not divide image size {image_size}"
        )
    return VisionTransformer(
        img_size=image_size,
        patch_size=patch_size,
        in_chans=channels,
        num_classes=num_classes,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
        **kwargs,
    )


def _timm(num_classes, channels, image_size, arch: str, **kwargs):
    import timm

    return timm.create_model(
        arch, pretrained=False, num_classes=num_classes, in_chans=channels, **kwargs
    )


def _swin(
    num_classes,
    channels,
    image_size,
    arch="swin_tiny_patch4_window7_224",
    window_size=None,
    **kwargs,
):
    """Swin at any size that patch 4 divides; the window shrinks to 4 when 7 does not fit the grid."""
    if window_size is None:
        window_size = 7 if (image_size // 4) % 7 == 0 else 4
    return _timm(
        num_classes,
        channels,
        image_size,
        arch,
        img_size=image_size,
        window_size=window_size,
        **kwargs,
    )


def _require_multiple_of_32(model: str, image_size: int) -> None:
    """Hierarchical ViTs halve the resolution until a 32-fold reduction."""
    if image_size % 32:
        raise ValueError(f"Invalid image size for {model}: {image_size} (must be a multiple of 32)")


def _focalnet(num_classes, channels, image_size, arch="focalnet_tiny_srf", **kwargs):
    _require_multiple_of_32("FocalNet", image_size)
    return _timm(num_classes, channels, image_size, arch, **kwargs)


def _gcvit(num_classes, channels, image_size, arch="gc_vit_xxtiny", **kwargs):
    _require_multiple_of_32("GC-ViT", image_size)
    arch = arch.replace("gc_vit", "gcvit")
    return _timm(num_classes, channels, image_size, arch, img_size=image_size, **kwargs)


MODELS: dict[str, ModelSpec] = {
    "small_cnn": ModelSpec(
        lambda num_classes, channels, image_size, **kw: SmallCNN(num_classes, channels, **kw),
        "cnn",
        "two conv stages and a linear head; the CPU default",
    ),
    "resnet": ModelSpec(
        lambda num_classes, channels, image_size, **kw: ResNet(num_classes, channels, **kw),
        "cnn",
        "CIFAR-style ResNet, depth 18/34/50",
        {"depth": tuple(sorted(RESNET_LAYOUTS))},
    ),
    "vgg": ModelSpec(
        lambda num_classes, channels, image_size, **kw: VGG(num_classes, channels, **kw),
        "cnn",
        "VGG16 with batch norm",
    ),
    "densenet": ModelSpec(
        lambda num_classes, channels, image_size, **kw: densenet121_cifar(
            num_classes, channels, **kw
        ),
        "cnn",
        "CIFAR-style DenseNet-121",
    ),
    "convmixer": ModelSpec(
        lambda num_classes, channels, image_size, **kw: ConvMixer(num_classes, channels, **kw),
        "cnn",
        "ConvMixer at CIFAR scale (dim 256, depth 8)",
    ),
    "vit": ModelSpec(_vit, "vit", "timm VisionTransformer for small inputs (patch 4 by default)"),
    "swin": ModelSpec(_swin, "vit", "timm Swin-T (the paper's), input size and window adapted"),
    "focalnet": ModelSpec(
        _focalnet, "vit", "timm FocalNet-T-srf (the paper's); image size a multiple of 32"
    ),
    "gcvit": ModelSpec(
        _gcvit, "vit", "timm GC-ViT-xxtiny (the paper's); image size a multiple of 32"
    ),
    "timm": ModelSpec(
        _timm,
        "vit",
        "any timm architecture by name (arch=swin_tiny_patch4_window7_224), options passed through",
    ),
}


def create_model(
    name: str, num_classes: int, channels: int, image_size: int, **options: Any
) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name].build(
        num_classes=num_classes, channels=channels, image_size=image_size, **options
    )
