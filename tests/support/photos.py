"""Test photographs made at run time, the naive fitting baseline, and the SSIM measure.

The photos come from scikit-image's bundled sample data (they ship inside the wheel, no
network): `astronaut` (NASA, public domain), `coffee` (Rachel Michetti, CC0), `chelsea`
(Stefan van der Walt, CC0) and `rocket` (SpaceX, public domain). They are upscaled with
LANCZOS and given mild sensor-like noise so that they weigh what a phone photo weighs.
Nothing binary is committed. Shared by `tests/daemon/test_media.py` and `bench/bench_media.py`.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image
from skimage import data as skdata
from skimage.metrics import structural_similarity

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")

#: The naive fit: fixed quality steps, then halve the resolution and start again.
NAIVE_QUALITIES = (95, 85, 75, 65, 55)


@lru_cache(maxsize=16)
def photo_image(
    name: str, width: int = 3000, height: int = 2000, noise: float = 3.0
) -> Image.Image:
    """A sample photo as an RGB image of the given size, with Gaussian noise of `noise`."""
    pixels = getattr(skdata, name)()
    image = Image.fromarray(pixels).convert("RGB")
    image = image.resize((width, height), Image.Resampling.LANCZOS)
    if noise:
        rng = np.random.default_rng(sum(map(ord, name)))
        arr = np.asarray(image, dtype=np.float32)
        arr = arr + rng.normal(0.0, noise, arr.shape).astype(np.float32)
        image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return image


@lru_cache(maxsize=16)
def photo_jpeg(name: str, width: int = 3000, height: int = 2000, quality: int = 92) -> bytes:
    """The sample photo as camera-like JPEG bytes (several MB at 3000x2000)."""
    out = io.BytesIO()
    photo_image(name, width, height).save(out, "JPEG", quality=quality)
    return out.getvalue()


@lru_cache(maxsize=16)
def photo_png(name: str, width: int = 1200, height: int = 800) -> bytes:
    """The sample photo as an opaque RGB PNG."""
    out = io.BytesIO()
    photo_image(name, width, height).save(out, "PNG")
    return out.getvalue()


def naive_fit(image: Image.Image, target: int) -> bytes:
    """Step JPEG quality 95, 85, ... 55; when even 55 is too big, halve the size and repeat."""
    current = image.convert("RGB")
    while True:
        for quality in NAIVE_QUALITIES:
            out = io.BytesIO()
            current.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= target:
                return out.getvalue()
        if max(current.size) < 64:
            return out.getvalue()
        current = current.resize(
            (current.width // 2, current.height // 2), Image.Resampling.LANCZOS
        )


def ssim(original: Image.Image, encoded: bytes) -> float:
    """SSIM (greyscale) of `encoded` scaled back up to the original's size, vs the original.

    `original` is the decoded file the user attached: that is what a fit must preserve.
    Comparing at the original size charges a fit for the detail a lower resolution lost,
    which is what the user sees when they zoom in.
    """
    with Image.open(io.BytesIO(encoded)) as decoded:
        back = decoded.convert("L")
    if back.size != original.size:
        back = back.resize(original.size, Image.Resampling.LANCZOS)
    reference = np.asarray(original.convert("L"), dtype=np.float64)
    candidate = np.asarray(back, dtype=np.float64)
    return float(structural_similarity(reference, candidate, data_range=255.0))  # type: ignore[no-untyped-call]
