"""Training augmentations, batched and drawn from one generator so a resumed epoch repeats them.

``vit`` is the recipe of the paper's ImageWoof runs (timm's ``create_transform`` as the Swin,
FocalNet and GC-ViT code call it): random-resized crop of the decoded image (area 8-100%, aspect
3/4-4/3, timm's ten attempts and centre fallback), bicubic resize, horizontal flip, colour jitter
0.4 (brightness, contrast, saturation in a random order per image) and random erasing with
probability 0.25 (area 2-33%, aspect 0.3-3.3, per-pixel normal noise in normalised units).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from rootfree.data.ragged import RaggedImages, unit

PAD = 4
ATTEMPTS = 10
CROP_SCALE, CROP_RATIO = (0.08, 1.0), (3 / 4, 4 / 3)
ERASE_SCALE, ERASE_RATIO = (0.02, 1 / 3), (0.3, 1 / 0.3)
LUMA = (0.2989, 0.587, 0.114)


def crop_flip(images: torch.Tensor, generator: torch.Generator, **_) -> torch.Tensor:
    """Random crop after zero-padding by 4 pixels, and a random horizontal flip (the CIFAR recipe)."""
    images = unit(images)
    batch, _, height, width = images.shape
    padded = F.pad(images, (PAD, PAD, PAD, PAD))
    dy = torch.randint(0, 2 * PAD + 1, (batch,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * PAD + 1, (batch,), generator=generator).to(images.device)
    rows = (dy[:, None] + torch.arange(height, device=images.device))[:, :, None]
    cols = (dx[:, None] + torch.arange(width, device=images.device))[:, None, :]
    crops = padded[torch.arange(batch, device=images.device)[:, None, None], :, rows, cols]
    crops = crops.permute(0, 3, 1, 2)
    flip = (torch.rand(batch, generator=generator) < 0.5).to(images.device)
    return torch.where(flip[:, None, None, None], crops.flip(-1), crops)


def _attempts(
    hw: torch.Tensor, scale: tuple[float, float], ratio: tuple[float, float], g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(h, w) of ``ATTEMPTS`` boxes per image: area a fraction ``scale`` of it, log-uniform aspect."""
    n = len(hw)
    area = (hw[:, 0] * hw[:, 1])[:, None] * torch.empty(n, ATTEMPTS).uniform_(*scale, generator=g)
    log_ratio = torch.empty(n, ATTEMPTS).uniform_(
        math.log(ratio[0]), math.log(ratio[1]), generator=g
    )
    aspect = log_ratio.exp()
    return (area / aspect).sqrt().round(), (area * aspect).sqrt().round()


def _first(ok: torch.Tensor, *values: torch.Tensor) -> list[torch.Tensor]:
    index = ok.int().argmax(1, keepdim=True)
    return [value.gather(1, index).squeeze(1) for value in values]


def resized_crop_boxes(hw: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(top, left, h, w) per image of heights/widths ``hw``, as timm's RandomResizedCrop draws
    them: the first of ten attempts that fits, else the whole image with its aspect clamped."""
    hw = hw.double()
    h, w = _attempts(hw, CROP_SCALE, CROP_RATIO, generator)
    ok = (h <= hw[:, :1]) & (w <= hw[:, 1:])
    h, w = _first(ok, h, w)
    height, width = hw[:, 0], hw[:, 1]
    in_ratio = width / height
    fallback_w = torch.where(in_ratio > CROP_RATIO[1], (height * CROP_RATIO[1]).round(), width)
    fallback_h = torch.where(in_ratio < CROP_RATIO[0], (width / CROP_RATIO[0]).round(), height)
    found = ok.any(1)
    h, w = torch.where(found, h, fallback_h), torch.where(found, w, fallback_w)
    u = torch.rand(len(hw), 2, generator=generator, dtype=torch.float64)
    top = torch.where(found, (u[:, 0] * (height - h + 1)).floor(), ((height - h) / 2).floor())
    left = torch.where(found, (u[:, 1] * (width - w + 1)).floor(), ((width - w) / 2).floor())
    return torch.stack([top, left, h, w], 1).long()


def erasing_boxes(
    size: int, n: int, probability: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(top, left, h, w) of timm's RandomErasing on ``size`` squares, and which images it erases."""
    hw = torch.full((n, 2), float(size), dtype=torch.float64)
    h, w = _attempts(hw, ERASE_SCALE, ERASE_RATIO, generator)
    w, h = h, w  # timm draws h from area * aspect
    ok = (h < size) & (w < size)
    h, w = _first(ok, h, w)
    u = torch.rand(n, 3, generator=generator, dtype=torch.float64)
    erase = (u[:, 0] < probability) & ok.any(1)
    top, left = (u[:, 1] * (size - h + 1)).floor(), (u[:, 2] * (size - w + 1)).floor()
    return torch.stack([top, left, h, w], 1).long(), erase


def _resized_crop(image: torch.Tensor, box: list[int], size: int) -> torch.Tensor:
    """One box resized to ``size`` (bicubic, antialiased), as floats in [0, 1]; uint8 images are
    resized as uint8 on the CPU (torch's fast path) and converted after."""
    top, left, h, w = box
    crop = image[..., top : top + h, left : left + w]
    if crop.is_floating_point() or crop.device.type != "cpu":
        crop = unit(crop)
    bicubic = v2.InterpolationMode.BICUBIC
    return unit(TF.resize(crop, [size, size], interpolation=bicubic, antialias=True))


def _crop_all(images: torch.Tensor | RaggedImages, size: int, g: torch.Generator) -> torch.Tensor:
    hw = images.hw() if isinstance(images, RaggedImages) else torch.tensor([images.shape[-2:]])
    boxes = resized_crop_boxes(hw.expand(len(images), 2), g).tolist()
    crops = [_resized_crop(image, box, size) for image, box in zip(images, boxes)]
    return torch.stack(crops).clamp_(0, 1)


def color_jitter(images: torch.Tensor, factors: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and saturation by ``factors`` (3, batch), applied in ``order``
    (batch, 3; 0, 1, 2 name them), each clamped to [0, 1] as torchvision's ColorJitter does.

    Each is ``a x + b grey(x) + c`` with per-image coefficients, so one pass does every image's
    operation at a position whichever it is."""
    luma = torch.tensor(LUMA if images.shape[1] == 3 else (1.0,), device=images.device)
    factors, order = factors.to(images.device), order.to(images.device)
    rows = torch.arange(len(images), device=images.device)
    for position in range(3):
        chosen = order[:, position]
        f = factors[chosen, rows].view(-1, 1, 1, 1)
        grey = torch.einsum("bchw,c->bhw", images, luma).unsqueeze(1)
        b = torch.where(chosen == 2, 1 - f.flatten(), 0.0).view(-1, 1, 1, 1)
        mean = grey.mean(dim=(2, 3), keepdim=True)
        c = torch.where(chosen.view(-1, 1, 1, 1) == 1, (1 - f) * mean, 0.0)
        images = torch.addcmul(c, f, images).addcmul_(b, grey).clamp_(0, 1)
    return images


def _jitter(images: torch.Tensor, strength: float, g: torch.Generator) -> torch.Tensor:
    """ColorJitter(strength, strength, strength): factors in 1 +- strength, a random order each."""
    batch = len(images)
    factors = 1 + strength * (2 * torch.rand(3, batch, generator=g) - 1)
    return color_jitter(images, factors, torch.rand(batch, 3, generator=g).argsort(1))


def vit_augment(
    images: torch.Tensor | RaggedImages,
    generator: torch.Generator,
    *,
    size: int | None = None,
    mean: torch.Tensor | float = 0.5,
    std: torch.Tensor | float = 0.25,
    erase_probability: float = 0.25,
    jitter: float = 0.4,
) -> torch.Tensor:
    """The ViT training recipe on uint8 images or floats in [0, 1]; returns ``size`` squares of
    floats (default: the input size). Erased pixels are ``mean + std * N(0, 1)``: standard
    normal once normalised."""
    size = size or images.shape[-1]
    out = _crop_all(images, size, generator)
    device = out.device
    flip = (torch.rand(len(out), generator=generator) < 0.5).to(device)
    out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    out = _jitter(out, jitter, generator)
    boxes, erase = erasing_boxes(size, len(out), erase_probability, generator)
    rows = torch.arange(size)
    top, left, h, w = boxes.unbind(1)
    inside_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])
    inside_cols = (rows >= left[:, None]) & (rows < (left + w)[:, None])
    mask = (inside_rows[:, :, None] & inside_cols[:, None, :] & erase[:, None, None])[:, None]
    mean = torch.as_tensor(mean, device=device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, device=device).view(1, -1, 1, 1)
    erased = erase.nonzero().flatten().to(device)
    noise = torch.randn((len(erased), *out.shape[1:]), generator=generator).to(device)
    out[erased] = torch.where(mask[erase].to(device), mean + std * noise, out[erased])
    return out


AUGMENTATIONS = {"crop_flip": crop_flip, "vit": vit_augment}
