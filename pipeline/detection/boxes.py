"""Box geometry shared by the detectors, the refiner, their training and the benchmarks.

Boxes are ``(x0, y0, x1, y1)`` in pixels (SPEC section 1)."""

from __future__ import annotations


def area(box) -> float:
    """Area of a box in px^2 (0 when it is empty or inverted)."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection(a, b) -> float:
    """Area of the overlap of two boxes in px^2."""
    return area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def iou(a, b) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    inter = intersection(a, b)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nested(a, b, contained: float = 0.8, max_area_ratio: float = 0.4) -> bool:
    """Whether one of two boxes (x0, y0, x1, y1) sits inside the other as a part of it: at least
    ``contained`` of the smaller box's area lies inside the bigger one and the smaller one has at
    most ``max_area_ratio`` of its area (e.g. a mouth box inside a face box, or a face inside a box
    twice its side). Such a pair has IoU <= ``max_area_ratio``, so an IoU merge never joins it."""
    small, big = (a, b) if area(a) <= area(b) else (b, a)
    if area(small) <= 0:
        return False
    return intersection(small, big) >= contained * area(small) and area(small) <= max_area_ratio * area(big)


def square_of(box) -> tuple[float, float, float]:
    """(cx, cy, side) of the square of side max(w, h) centred on ``box``."""
    x0, y0, x1, y1 = box
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0, float(max(x1 - x0, y1 - y0))


def centre_inside(box, outer) -> bool:
    """Whether the centre of ``box`` lies inside ``outer`` (borders included)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def box_matches(det_box, gt_box) -> bool:
    """Convention-free hit: the centre of ``det_box`` lies inside ``gt_box`` and the sqrt(area) ratio
    of the two is within [0.5, 2] (a test that does not depend on a detector's box convention)."""
    if not centre_inside(det_box, gt_box):
        return False
    r = (
        max((det_box[2] - det_box[0]) * (det_box[3] - det_box[1]), 1e-9)
        / max((gt_box[2] - gt_box[0]) * (gt_box[3] - gt_box[1]), 1e-9)
    ) ** 0.5
    return 0.5 <= r <= 2.0
