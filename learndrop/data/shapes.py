"""``shapes``: a synthetic, seeded image data set of 10 procedurally drawn shapes (the embedded default).

Each image is one shape with random position, size, rotation, colours and noise. Shapes are drawn
from their implicit equations in the shape's own rotated frame ``(u, v)`` (unit = the shape's radius),
vectorised over the whole data set, so 12,000 images take well under a second.
"""

from __future__ import annotations

import numpy as np
import torch

CLASSES = ("circle", "square", "triangle", "cross", "ring", "bars", "star", "crescent", "semicircle", "frame")


def _masks(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    rho = np.hypot(u, v)
    box = np.maximum(np.abs(u), np.abs(v))
    name = CLASSES[label]
    if name == "circle":
        return rho <= 1.0
    if name == "square":
        return box <= 0.8
    if name == "triangle":  # equilateral, inscribed in the unit circle: three half-planes
        normals = [(np.cos(a), np.sin(a)) for a in (-np.pi / 2, np.pi / 6, 5 * np.pi / 6)]
        return np.all([u * nx + v * ny <= 0.5 for nx, ny in normals], axis=0)
    if name == "cross":
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1.0))
    if name == "ring":
        return (rho <= 1.0) & (rho >= 0.6)
    if name == "bars":  # three parallel bars
        return (box <= 0.9) & (np.floor((v + 0.9) / 0.36) % 2 == 0)
    if name == "star":  # five points
        phi = np.arctan2(v, u)
        return rho <= 0.35 + 0.65 * (0.5 + 0.5 * np.cos(5 * phi)) ** 2
    if name == "crescent":
        return (rho <= 1.0) & (np.hypot(u - 0.5, v) > 0.8)
    if name == "semicircle":
        return (rho <= 1.0) & (v >= 0.0)
    if name == "frame":
        return (box <= 0.9) & (box >= 0.55)
    raise ValueError(name)


def make_shapes(n: int, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (uint8, n x 3 x size x size) and balanced labels (int64), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(CLASSES))
    # geometry, in pixels: centre, radius, rotation
    f32 = np.float32
    cx, cy = (rng.uniform(0.3, 0.7, (2, n)) * size).astype(f32)[:, :, None, None]
    radius = (rng.uniform(0.16, 0.34, n) * size).astype(f32)[:, None, None]
    theta = rng.uniform(0, 2 * np.pi, n).astype(f32)[:, None, None]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx[None] - cx, yy[None] - cy
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / radius
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / radius
    mask = np.zeros((n, size, size), dtype=bool)
    for label in range(len(CLASSES)):
        sel = labels == label
        mask[sel] = _masks(label, u[sel], v[sel])
    # colours: a dark and a light one per image, either may be the shape's
    dark = rng.uniform(0.0, 0.45, (n, 3, 1, 1)).astype(f32)
    light = rng.uniform(0.55, 1.0, (n, 3, 1, 1)).astype(f32)
    swap = rng.random((n, 1, 1, 1)) < 0.5
    fg, bg = np.where(swap, dark, light), np.where(swap, light, dark)
    img = np.where(mask[:, None], fg, bg)
    img += rng.standard_normal(img.shape, dtype=f32) * rng.uniform(0.05, 0.2, (n, 1, 1, 1)).astype(f32)
    images = np.clip(img * f32(255.0) + f32(0.5), 0, 255).astype(np.uint8)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))
