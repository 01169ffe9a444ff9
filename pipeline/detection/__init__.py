"""Detect and refine stages (dlib baselines now; the DPM mixture and the box CNN: issue #8)."""
