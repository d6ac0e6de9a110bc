"""Whether a data set fits in this machine's memory before it is loaded (data sets are held in memory).

A setting that asks for more than the machine holds (``--image-size 4096`` on 50,000 images: 2.5 TB)
would otherwise take the process down, and the dashboard's server with it, once loading is well under
way; asked first, it is one line that says what would be needed and what there is.
"""

from __future__ import annotations

import os

from ..errors import LearnDropError

# of the physical memory, at most, for one data set: the run needs the rest (model, copies, cache)
SHARE = 0.5


def physical_bytes() -> int | None:
    """This machine's physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(images: int, channels: int, size: int, what: str, bytes_per_value: int = 1) -> None:
    """``LearnDropError`` (field ``image_size``) when ``images`` of ``channels`` x ``size`` x ``size`` values
    of ``bytes_per_value`` bytes each would take more than ``SHARE`` of the physical memory."""
    total = physical_bytes()
    need = images * channels * size * size * bytes_per_value
    if total is None or need <= SHARE * total:
        return
    raise LearnDropError(f"{what}: {images:,} images of {channels}x{size}x{size} px need {_gib(need)} of "
                         f"memory, more than half of this machine's {_gib(total)}; use a smaller "
                         "--image-size or --subset",
                         field="image_size")


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


__all__ = ["check_fits", "physical_bytes"]
