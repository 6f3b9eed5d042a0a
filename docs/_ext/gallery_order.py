"""Order of the examples in the gallery: from the data to the whole method."""

from __future__ import annotations

#: Example files in the order a reader meets the method; others follow, sorted.
ORDER = (
    "plot_phantom.py",
    "plot_phantom_factors.py",
    "plot_superpixels.py",
    "plot_cascade.py",
    "plot_augmentation.py",
    "plot_pipeline.py",
)


class ExampleOrder:
    """Sort key for sphinx-gallery's ``within_subsection_order``."""

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple[int, str]:
        rank = ORDER.index(filename) if filename in ORDER else len(ORDER)
        return rank, filename

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {ORDER}>"
