"""CIFAR-style convolutional networks: a small CNN for CPU runs, ResNet-18/34/50, VGG16-BN.

CIFAR-style means a 3x3 stride-1 stem and no max-pool, so 28-32 pixel inputs keep resolution.
"""

from __future__ import annotations

from torch import nn


class SmallCNN(nn.Module):
    """Two conv-BN-ReLU-pool stages and a linear head: trains Fashion-MNIST on 2 CPU cores."""

    def __init__(self, num_classes: int, channels: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Linear(2 * width * 16, num_classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inputs: int, planes: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(inputs, planes, 3, stride, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, 1, 1, bias=False),
            nn.BatchNorm2d(planes),
        )
        self.shortcut = _shortcut(inputs, planes * self.expansion, stride)

    def forward(self, x):
        return (self.body(x) + self.shortcut(x)).relu()


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inputs: int, planes: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(inputs, planes, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes * self.expansion, 1, bias=False),
            nn.BatchNorm2d(planes * self.expansion),
        )
        self.shortcut = _shortcut(inputs, planes * self.expansion, stride)

    def forward(self, x):
        return (self.body(x) + self.shortcut(x)).relu()


def _shortcut(inputs: int, outputs: int, stride: int) -> nn.Module:
    if stride == 1 and inputs == outputs:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))


RESNET_LAYOUTS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNet(nn.Module):
    def __init__(self, num_classes: int, channels: int, depth: int = 18, width: int = 64) -> None:
        super().__init__()
        if depth not in RESNET_LAYOUTS:
            raise ValueError(
                f"Invalid ResNet depth: {depth}; choose one of {sorted(RESNET_LAYOUTS)}"
            )
        block, counts = RESNET_LAYOUTS[depth]
        self.stem = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        layers, inputs = [], width
        for stage, count in enumerate(counts):
            planes = width * 2**stage
            for index in range(count):
                layers.append(block(inputs, planes, 2 if stage > 0 and index == 0 else 1))
                inputs = planes * block.expansion
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(inputs, num_classes)

    def forward(self, x):
        return self.head(self.layers(self.stem(x)).mean(dim=(2, 3)))


VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(nn.Module):
    """VGG16 with batch norm; ``width`` scales every layer (1.0 is the paper's)."""

    def __init__(self, num_classes: int, channels: int, width: float = 1.0) -> None:
        super().__init__()
        layers, inputs = [], channels
        for item in VGG16:
            if item == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                outputs = max(1, int(item * width))
                layers += [
                    nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
                    nn.BatchNorm2d(outputs),
                    nn.ReLU(inplace=True),
                ]
                inputs = outputs
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(inputs, num_classes)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def densenet121_cifar(num_classes: int, channels: int, growth_rate: int = 32) -> nn.Module:
    """DenseNet-121 (growth 32, blocks 6/12/24/16) with a CIFAR stem: 3x3 stride-1 conv, no pool."""
    from torchvision.models import DenseNet

    model = DenseNet(
        growth_rate=growth_rate,
        block_config=(6, 12, 24, 16),
        num_init_features=2 * growth_rate,
        num_classes=num_classes,
    )
    model.features.conv0 = nn.Conv2d(channels, 2 * growth_rate, 3, padding=1, bias=False)
    model.features.pool0 = nn.Identity()
    return model


class ConvMixer(nn.Module):
    """ConvMixer (Trockman and Kolter, 2022) at CIFAR scale: patch embedding, depthwise-pointwise blocks."""

    def __init__(
        self,
        num_classes: int,
        channels: int,
        dim: int = 256,
        depth: int = 8,
        kernel_size: int = 5,
        patch_size: int = 2,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(channels, dim, patch_size, stride=patch_size), nn.GELU(), nn.BatchNorm2d(dim)
        )
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "depthwise": nn.Sequential(
                        nn.Conv2d(dim, dim, kernel_size, groups=dim, padding="same"),
                        nn.GELU(),
                        nn.BatchNorm2d(dim),
                    ),
                    "pointwise": nn.Sequential(
                        nn.Conv2d(dim, dim, 1), nn.GELU(), nn.BatchNorm2d(dim)
                    ),
                }
            )
            for _ in range(depth)
        )
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block["pointwise"](block["depthwise"](x) + x)
        return self.head(x.mean(dim=(2, 3)))
