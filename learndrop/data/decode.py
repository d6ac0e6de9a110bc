"""Image files decoded as their authors meant them: 8-bit RGB (or gray) at one size, 16-bit images scaled
down, EXIF orientation applied, anything else refused with the file named. Decoded in threads (PIL releases
the GIL)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import LearnDropError

WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # PIL modes of more than 8 bits per value


def first_size(path: str) -> int:
    with _open(path) as im:
        return max(8, min(224, min(im.size)))


def _open(path: str) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()
        return im
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise LearnDropError(f"corrupt or unreadable image {path!r}: {exc}") from exc


def _decode(path: str, size: int, mode: str) -> tuple[np.ndarray, bool, bool]:
    """The image as an array in ``mode`` and ``size``; whether it had to be resized, converted. Read as its
    authors meant it: turned upright as its EXIF orientation says, and 16-bit or 32-bit values scaled to
    8 bits (PIL's ``convert`` clips them at 255, so a 16-bit image turns solid white)."""
    im = ImageOps.exif_transpose(_open(path))
    converted = im.mode != mode
    im = im.convert(mode) if im.mode not in WIDE_MODES else _to_8_bits(im, path).convert(mode)
    resized = im.size != (size, size)
    if resized:
        im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im), resized, converted


def _to_8_bits(im: Image.Image, path: str) -> Image.Image:
    """A 16-bit (``I;16*``) or 32-bit integer (``I``: how PIL opens a 16-bit PNG) grayscale image scaled to
    8 bits: 0-65535 to 0-255. Float images (``F``) have no range to scale from: refused, the file named."""
    if im.mode == "F":
        raise LearnDropError(f"image {path!r} holds floating-point values (PIL mode F), whose range is not "
                             "known: save it as 8- or 16-bit")
    values = np.asarray(im).astype(np.float64)
    if values.min() < 0 or values.max() > 65535:
        raise LearnDropError(f"image {path!r} holds values outside 0-65535 (PIL mode {im.mode}): save it as "
                             "8- or 16-bit")
    return Image.fromarray(np.round(values / 257.0).astype(np.uint8), mode="L")


def decode_all(paths: list[str], size: int, mode: str) -> tuple[torch.Tensor, int, int]:
    """Decode and resize every image (PIL releases the GIL, so threads help); counts resized, converted.
    When it stops early (a bad image, a signal), the images not yet begun are not decoded."""
    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        decoded = list(pool.map(lambda p: _decode(p, size, mode), paths))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    images = torch.from_numpy(np.stack([d[0] for d in decoded])).permute(0, 3, 1, 2).contiguous()
    return images, sum(d[1] for d in decoded), sum(d[2] for d in decoded)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    out = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True,
                                          align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)
