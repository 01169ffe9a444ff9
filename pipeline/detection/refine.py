"""Box refinement stage. ``none``: the identity baseline (the detector box is used as is)."""

from __future__ import annotations

import numpy as np

from pipeline.types import Detection


class IdentityRefiner:
    """Returns the detection unchanged."""

    name = "none"
    ranks_by_score = False  # a plain refiner (see pipeline.types.Refiner)

    def refine(self, image: np.ndarray, detection: Detection) -> Detection:
        return detection
