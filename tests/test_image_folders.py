"""Image folders read as their authors meant them, or refused with the file named: 16-bit images scaled to
8 bits (PIL's convert clipped them at 255: a class became solid white), hidden folders such as
.ipynb_checkpoints neither a class nor a source of images, photos turned upright as their EXIF says."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from learndrop.data.datasets import create_dataset
from learndrop.errors import LearnDropError


def _save(path, array, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kw)


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    for cls, value in (("dark", 2570), ("bright", 51400)):  # 10 and 200 in 8 bits (x 257)
        for i in range(5):
            _save(tmp_path / cls / f"{i}.png", np.full((16, 16), value, dtype=np.uint16))
    assert Image.open(tmp_path / "dark" / "0.png").mode.startswith("I")
    data = create_dataset(f"folder:{tmp_path}", train=True)
    for name, expected in (("dark", 10), ("bright", 200)):
        images = data.images[data.labels == data.classes.index(name)]
        assert images.min() == images.max() == expected, name


def test_hidden_folders_are_not_classes_and_their_images_are_not_read(tmp_path):
    for cls in ("cat", "dog"):
        for i in range(5):
            _save(tmp_path / cls / f"{i}.png", np.full((8, 8, 3), 50 if cls == "cat" else 150, dtype=np.uint8))
            black = np.zeros((8, 8, 3), dtype=np.uint8)
            _save(tmp_path / cls / ".ipynb_checkpoints" / f"{i}-checkpoint.png", black)
    _save(tmp_path / ".ipynb_checkpoints" / "x.png", np.zeros((8, 8, 3), dtype=np.uint8))
    train = create_dataset(f"folder:{tmp_path}", train=True)
    test = create_dataset(f"folder:{tmp_path}", train=False)
    assert train.classes == ("cat", "dog")
    assert len(train) + len(test) == 10 and int(train.images.min()) in (50, 150)  # no black checkpoint copies
    assert any("hidden" in note for note in train.notes)


def test_a_photo_is_turned_upright_as_its_exif_says(tmp_path):
    tall = np.zeros((16, 8, 3), dtype=np.uint8)
    tall[:8] = 255  # white on top, as the camera saw it
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored pixels are turned 90 degrees
    for cls in ("a", "b"):
        for i in range(3):
            _save(tmp_path / cls / f"{i}.jpg", np.rot90(tall, k=1).copy(), exif=exif, quality=100)
    data = create_dataset(f"folder:{tmp_path}", train=True, image_size=8)
    picture = data.images[0].float().mean(dim=0)  # (h, w)
    assert picture[:4].mean() > 180 and picture[4:].mean() < 75  # white on top, as the camera saw it (not on a side)


def test_a_floating_point_image_is_refused_with_its_file_named(tmp_path):
    for cls in ("a", "b"):
        for i in range(3):
            _save(tmp_path / cls / f"{i}.png", np.full((8, 8, 3), 9, dtype=np.uint8))
    Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)).save(tmp_path / "a" / "float.tiff")
    with pytest.raises(LearnDropError, match=r"float\.tiff' holds floating-point values"):
        create_dataset(f"folder:{tmp_path}", train=True)
