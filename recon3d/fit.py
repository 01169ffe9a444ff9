"""Fitting the morphable model to 2D landmarks: pose + regularised linear shape (+ expression).

Method (P. Huber et al., "A Multiresolution 3D Morphable Face Model and Fitting Framework", VISAPP
2016, as implemented in eos ``fit_shape_and_pose``; the linear shape step follows Aldrian & Smith,
"Inverse rendering of faces with a 3D morphable model", TPAMI 2013): alternate

1. camera: scaled-orthographic camera from the 2D landmarks and the current 3D landmark points
   (:func:`recon3d.camera.estimate_camera`: Gold Standard affine, H&Z Alg. 7.2, nearest scaled
   orthographic, LM refinement);
2. shape: with the camera fixed, the projected landmarks are linear in the shape coefficients
   alpha (in standard deviations), solved in closed form with a Tikhonov prior (Eq. of
   :func:`solve_tikhonov`)::

       min_alpha  sum_k w_k || A_k alpha - b_k ||^2 + lambda ||alpha||^2
       A_k = F R_{1:2} B_k          (2, S)   B_k: basis rows of landmark k, (3, S), mm / std dev
       b_k = (x_k - t) / s - F R_{1:2} (mean_k + E_k beta)     (2,)   mm

   residuals are measured in model millimetres (pixels / s), so lambda (mm^2) does not depend on
   the image resolution; lambda = sigma^2 is the MAP estimate for isotropic landmark noise of
   sigma mm and the N(0, I) shape prior;
3. expression (optional): the same system in the blendshape weights beta, solved by non-negative
   least squares with a Tikhonov term (blendshapes are additive, beta >= 0, as in eos);
4. contour (optional, when 2D jaw-contour points are given, e.g. iBUG 1-8/10-17 from dlib): each
   2D contour point is matched to the nearest projected *silhouette* vertex of its side
   (:func:`recon3d.model.silhouette_vertices`, landmark marching), re-chosen every iteration.

Only landmarks that are visible and have a positive score constrain the fit; their weight is the
score (clipped to [0, 1]). Degenerate input (fewer than ``min_visible`` points, NaNs, collinear
points) raises :class:`pipeline.errors.FitError`, never a NumPy LinAlgError.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.optimize import nnls

from pipeline.errors import FitError
from pipeline.types import AFLW19_NAMES, NUM_LANDMARKS, Fit3D, Landmarks
from recon3d.camera import Camera, estimate_camera
from recon3d.model import MorphableModel, aflw19_vertex_groups, load_model, silhouette_vertices

log = logging.getLogger(__name__)

_F = np.diag([1.0, -1.0])


@dataclass(frozen=True)
class FitConfig:
    """Settings of :func:`fit_landmarks`.

    n_shape: number of PCA shape coefficients fitted (<= 63); lam: Tikhonov weight of the shape
    prior (mm^2, see the module docstring); n_iter: camera / shape alternations; expression: also
    fit the 6 expression blendshapes; lam_expression: their Tikhonov weight (mm^2); contour_weight:
    weight of 2D jaw-contour points relative to a landmark of score 1; min_visible: fewest usable
    landmarks; refine_pose: LM refinement of the camera; max_collinearity: smallest allowed ratio of
    the two singular values of the centred 2D points (below = collinear -> FitError);
    fallback_weight: when fewer than ``min_visible`` points are visible (deep profiles, where a
    landmarker marks most points occluded), the best-scoring occluded points with finite
    coordinates are added with weight ``fallback_weight`` x score until ``min_visible`` are
    used (0 disables this; the fit then raises FitError). Their number is reported in
    ``Fit3D.camera["fallback_points"]``.
    """

    n_shape: int = 63
    lam: float = 10.0
    n_iter: int = 5
    expression: bool = True
    lam_expression: float = 20.0
    contour_weight: float = 0.5
    min_visible: int = 6
    refine_pose: bool = True
    max_collinearity: float = 0.02
    fallback_weight: float = 0.3


def promote_occluded(
    points: np.ndarray, visible: np.ndarray | None, scores: np.ndarray | None, min_visible: int, weight: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Visibility and scores with the best-scoring occluded points promoted (see FitConfig).

    points (K, 2), visible (K,) bool or None, scores (K,) or None. Returns (visible, scores,
    number promoted); nothing changes when enough points are usable or ``weight`` <= 0."""
    pts = np.asarray(points, dtype=np.float64)
    k = len(pts)
    vis = np.ones(k, bool) if visible is None else np.asarray(visible, dtype=bool).reshape(-1).copy()
    sc = np.ones(k) if scores is None else np.nan_to_num(np.asarray(scores, dtype=np.float64).reshape(-1), nan=0.0)
    if len(vis) != k or len(sc) != k:
        return vis, sc, 0
    usable = vis & (sc > 0)
    need = min_visible - int(usable.sum())
    if need <= 0 or weight <= 0:
        return vis, sc, 0
    cand = np.flatnonzero(~vis & np.isfinite(pts).all(1) & (sc > 0))
    pick = cand[np.argsort(-sc[cand], kind="stable")[:need]]
    sc = sc.copy()
    vis[pick] = True
    sc[pick] = np.clip(sc[pick], 0.0, 1.0) * weight
    return vis, sc, len(pick)


@dataclass(frozen=True, eq=False)
class FitResult:
    """Output of :func:`fit_landmarks`: camera; coeffs (n_shape,) std devs; expression (E,) or None;
    vertices (N, 3) mm; residual: mean 2D error (px) over the used AFLW landmarks; contour_ids:
    the vertex matched to each used contour point (or empty)."""

    camera: Camera
    coeffs: np.ndarray
    expression: np.ndarray | None
    vertices: np.ndarray
    residual: float
    contour_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def to_fit3d(self, **extra: Any) -> Fit3D:
        cam = self.camera.to_dict()
        cam.update(extra)
        return Fit3D(
            vertices=self.vertices, camera=cam, coeffs=self.coeffs, residual=self.residual, expression=self.expression
        )


# --- pure maths -----------------------------------------------------------------------------------------


def solve_tikhonov(A: np.ndarray, b: np.ndarray, w: np.ndarray, lam: float) -> np.ndarray:
    """Regularised weighted linear least squares (ridge / Tikhonov):

        argmin_x  sum_i w_i (A_i x - b_i)^2 + lam ||x||^2  =  (A^T W A + lam I)^-1 A^T W b

    A (m, n), b (m,), w (m,) >= 0, lam > 0 (or lam = 0 with a full-rank A^T W A). Raises FitError
    when the normal matrix is singular."""
    Aw = A * w[:, None]
    H = A.T @ Aw + lam * np.eye(A.shape[1])
    g = Aw.T @ b
    try:
        return np.linalg.solve(H, g)
    except np.linalg.LinAlgError as e:
        raise FitError(f"shape fit is singular ({e}); use a positive regulariser lambda") from e


def linear_system(camera: Camera, basis_rows: np.ndarray, offset_rows: np.ndarray, points: np.ndarray):
    """The linear model of the projected landmarks in a coefficient vector.

    camera: scaled orthographic; basis_rows (K, 3, S): d(landmark)/d(coeff) in mm; offset_rows
    (K, 3): the landmark points with these coefficients at 0 (mm); points (K, 2) px.
    Returns A (2K, S) and b (2K,) in mm such that the reprojection residual / s = A c - b."""
    P = _F @ camera.R[:2]  # (2, 3)
    A = np.einsum("ij,kjs->kis", P, basis_rows).reshape(-1, basis_rows.shape[2])
    b = ((points - camera.t) / camera.s - offset_rows @ P.T).reshape(-1)
    return A, b


def nnls_tikhonov(A: np.ndarray, b: np.ndarray, w: np.ndarray, lam: float) -> np.ndarray:
    """argmin_{x >= 0} sum_i w_i (A_i x - b_i)^2 + lam ||x||^2 (NNLS on the augmented system,
    Lawson & Hanson 1974)."""
    sw = np.sqrt(w)
    Aa = np.vstack([A * sw[:, None], np.sqrt(lam) * np.eye(A.shape[1])])
    ba = np.concatenate([b * sw, np.zeros(A.shape[1])])
    x, _ = nnls(Aa, ba, maxiter=50 * A.shape[1])
    return x


@dataclass(frozen=True, eq=False)
class Correspondences:
    """3D landmark definitions as vertex averages: ids (K, G) vertex ids, wts (K, G) weights (rows
    sum to 1). AFLW-19 points average 1-6 vertices; padded entries have weight 0."""

    ids: np.ndarray
    wts: np.ndarray

    @classmethod
    def from_groups(cls, groups) -> "Correspondences":
        g = max(len(x) for x in groups)
        ids = np.zeros((len(groups), g), np.int64)
        wts = np.zeros((len(groups), g))
        for k, grp in enumerate(groups):
            ids[k, : len(grp)] = grp
            ids[k, len(grp) :] = grp[0]
            wts[k, : len(grp)] = 1.0 / len(grp)
        return cls(ids, wts)

    def points(self, vertices: np.ndarray) -> np.ndarray:
        """(N, 3) -> (K, 3)."""
        return np.einsum("kg,kgd->kd", self.wts, vertices[self.ids])

    def rows(self, per_vertex: np.ndarray) -> np.ndarray:
        """(N, 3, S) -> (K, 3, S): the averaged basis rows."""
        return np.einsum("kg,kgds->kds", self.wts, per_vertex[self.ids])


def check_landmarks(
    points: np.ndarray,
    visible: np.ndarray | None,
    scores: np.ndarray | None,
    min_visible: int = 6,
    max_collinearity: float = 0.02,
    names: tuple[str, ...] = AFLW19_NAMES,
) -> np.ndarray:
    """Validate 2D landmarks and return their fit weights (K,): score clipped to [0, 1] for visible
    points, 0 otherwise. Raises FitError for NaN/inf visible points, fewer than ``min_visible``
    usable points, or degenerate (coincident / collinear) points."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise FitError(f"landmarks must be (K, 2), got shape {pts.shape}")
    vis = np.ones(len(pts), bool) if visible is None else np.asarray(visible, dtype=bool).reshape(-1)
    sc = np.ones(len(pts)) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(vis) != len(pts) or len(sc) != len(pts):
        raise FitError("visible and scores must have one entry per landmark")
    bad = vis & ~np.isfinite(pts).all(1)
    if bad.any():
        which = ", ".join(names[i] if i < len(names) else str(i) for i in np.flatnonzero(bad))
        raise FitError(f"landmark coordinates are NaN or infinite for visible point(s): {which}")
    w = np.where(vis, np.clip(np.nan_to_num(sc, nan=0.0), 0.0, 1.0), 0.0)
    used = w > 0
    if used.sum() < min_visible:
        raise FitError(
            f"only {int(used.sum())} visible landmarks with a positive score; the 3D fit needs at least {min_visible}"
        )
    c = pts[used] - pts[used].mean(0)
    sv = np.linalg.svd(c, compute_uv=False)
    if sv[0] < 1e-6:
        raise FitError("landmarks are degenerate: all visible points coincide")
    if sv[1] < max_collinearity * sv[0]:
        raise FitError(
            f"landmarks are degenerate: the visible points are (nearly) collinear "
            f"(singular value ratio {sv[1] / sv[0]:.2g} < {max_collinearity})"
        )
    return w


# --- the alternating fit --------------------------------------------------------------------------------


def _contour_matches(model: MorphableModel, vertices: np.ndarray, cam: Camera, contour: np.ndarray):
    """For each finite 2D contour point (17, 2; iBUG 1..17 order, 9 ignored), the nearest projected
    silhouette vertex of its side. Returns (used point indices, vertex ids)."""
    idx, vids = [], []
    for side, rng in (("right", range(0, 8)), ("left", range(9, 17))):
        cand = np.unique(silhouette_vertices(model, vertices, cam.R, side))
        proj = cam.project(vertices[cand])
        for i in rng:
            if not np.isfinite(contour[i]).all():
                continue
            j = int(np.argmin(np.linalg.norm(proj - contour[i], axis=1)))
            idx.append(i)
            vids.append(int(cand[j]))
    return np.array(idx, np.int64), np.array(vids, np.int64)


def fit_landmarks(
    model: MorphableModel,
    points: np.ndarray,
    weights: np.ndarray,
    config: FitConfig = FitConfig(),
    contour: np.ndarray | None = None,
    shape: bool = True,
    groups: tuple[tuple[int, ...], ...] | None = None,
) -> FitResult:
    """Fit pose, shape (and expression) to 2D landmarks (the alternation of the module docstring).

    model: the morphable model; points (K, 2) px (AFLW-19 order unless ``groups`` says otherwise);
    weights (K,) from :func:`check_landmarks`; contour: optional (17, 2) iBUG 1-17 jaw points (NaN =
    missing); shape=False fits the camera to the mean shape only (the baseline); groups: the vertex
    groups of the K landmarks (default AFLW-19, :func:`recon3d.model.aflw19_vertex_groups`).
    """
    pts = np.asarray(points, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    corr = Correspondences.from_groups(groups or aflw19_vertex_groups(model))
    if len(corr.ids) != len(pts):
        raise FitError(f"{len(pts)} landmarks given but {len(corr.ids)} correspondences defined")
    used = np.flatnonzero(w > 0)
    S = max(0, min(int(config.n_shape), model.n_shape)) if shape else 0
    use_expr = bool(shape and config.expression)
    E = model.n_expression if use_expr else 0
    # per-vertex blocks [shape | expression] (N, 3, S + E); only gathered rows are ever multiplied
    B3 = model.basis3()[:, :, :S]
    E3 = model.expressions3() if use_expr else np.zeros((model.n_vertices, 3, 0))
    coef = np.zeros(S + E)
    if contour is not None:
        contour = np.asarray(contour, dtype=np.float64).reshape(17, 2)
        row_ids = np.unique(np.concatenate([np.concatenate(model.contour_rows[sd]) for sd in ("right", "left")]))
    x_lm, w_lm = pts[used], w[used]
    sub = Correspondences(corr.ids[used], corr.wts[used])
    L0 = sub.points(model.mean)  # (k, 3)
    LB = np.concatenate([sub.rows(B3), sub.rows(E3)], axis=2)  # (k, 3, S + E)

    def vertices_at(ids: np.ndarray) -> np.ndarray:
        """Full-size (N, 3) array holding the current shape at ``ids`` (mean elsewhere)."""
        V = model.mean.copy()
        V[ids] += np.concatenate([B3[ids], E3[ids]], axis=2) @ coef
        return V

    def correspondences(cam: Camera | None):
        """2D points, 3D basis rows / offsets and weights of this iteration (+ contour matches)."""
        x, rows, off, ww = x_lm, LB, L0, w_lm
        cvid = np.zeros(0, np.int64)
        if contour is not None and cam is not None:
            cidx, cvid = _contour_matches(model, vertices_at(row_ids), cam, contour)
            if len(cidx):
                x = np.vstack([x, contour[cidx]])
                rows = np.concatenate([rows, np.concatenate([B3[cvid], E3[cvid]], axis=2)])
                off = np.vstack([off, model.mean[cvid]])
                ww = np.concatenate([ww, np.full(len(cidx), config.contour_weight)])
        return x, rows, off, ww, cvid

    n_iter = max(1, int(config.n_iter)) if (S + E or contour is not None) else 1
    cam = None
    cvid = np.zeros(0, np.int64)
    for _ in range(n_iter):
        x, rows, off, ww, cvid = correspondences(cam)
        cam = estimate_camera(x, off + rows @ coef, ww, refine=config.refine_pose)
        if S + E == 0:
            continue
        w2 = np.repeat(ww, 2)
        if S:  # shape step, expression fixed
            fixed = off + rows[:, :, S:] @ coef[S:]
            A, b = linear_system(cam, rows[:, :, :S], fixed, x)
            coef[:S] = solve_tikhonov(A, b, w2, config.lam)
        if E:  # expression step, shape fixed
            fixed = off + rows[:, :, :S] @ coef[:S]
            A, b = linear_system(cam, rows[:, :, S:], fixed, x)
            coef[S:] = nnls_tikhonov(A, b, w2, config.lam_expression)
    if S + E:  # final pose for the final shape
        x, rows, off, ww, cvid = correspondences(cam)
        cam = estimate_camera(x, off + rows @ coef, ww, refine=config.refine_pose)
    assert cam is not None  # the loop above runs n_iter >= 1 times
    alpha, beta = coef[:S].copy(), (coef[S:].copy() if E else None)
    resid = float(np.linalg.norm(cam.project(L0 + LB @ coef) - x_lm, axis=1).mean())
    if not np.isfinite(resid):
        raise FitError("the fit diverged (non-finite reprojection error)")
    V = model.shape(alpha, beta)
    return FitResult(camera=cam, coeffs=alpha, expression=beta, vertices=V, residual=resid, contour_ids=cvid)


# --- stages ---------------------------------------------------------------------------------------------


class SfmFitter:
    """Fit stage "sfm": Surrey Face Model pose + shape (+ expression) from the 19 AFLW landmarks.

    ``fit(image, landmarks) -> Fit3D``: vertices (3448, 3) mm in model space, camera dict
    (:meth:`recon3d.camera.Camera.to_dict` plus ``image_size`` (W, H)), coeffs (n_shape,) in std
    devs, residual (mean reprojection error of the used landmarks, px), expression (6,) or None.
    """

    name = "sfm"
    fits_shape = True

    def __init__(self, config: FitConfig | None = None, model_path: str | None = None, **options: Any):
        self.config = replace(config or FitConfig(), **options)
        self.model = load_model(model_path)

    def fit_points(
        self,
        points: np.ndarray,
        visible: np.ndarray | None = None,
        scores: np.ndarray | None = None,
        contour: np.ndarray | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> Fit3D:
        """Fit to raw arrays: points (19, 2) px, visible (19,), scores (19,), contour (17, 2) optional."""
        visible, scores, promoted = promote_occluded(
            points, visible, scores, self.config.min_visible, self.config.fallback_weight
        )
        w = check_landmarks(points, visible, scores, self.config.min_visible, self.config.max_collinearity)
        res = fit_landmarks(self.model, points, w, self.config, contour=contour, shape=self.fits_shape)
        extra: dict[str, Any] = {"fitter": self.name}
        if promoted:
            extra["fallback_points"] = promoted
        if image_size is not None:
            extra["image_size"] = (int(image_size[0]), int(image_size[1]))
        return res.to_fit3d(**extra)

    def fit(self, image: np.ndarray | None, landmarks: Landmarks, contour: np.ndarray | None = None) -> Fit3D:
        """Fit to a :class:`pipeline.types.Landmarks` (19 AFLW points); ``image`` only gives the size."""
        if landmarks is None:
            raise FitError("the 3D fit needs landmarks (none were computed)")
        if np.asarray(landmarks.points).shape != (NUM_LANDMARKS, 2):
            raise FitError(f"expected {NUM_LANDMARKS} AFLW landmarks, got {np.asarray(landmarks.points).shape}")
        size = None if image is None else (int(image.shape[1]), int(image.shape[0]))
        return self.fit_points(landmarks.points, landmarks.visible, landmarks.scores, contour=contour, image_size=size)


class MeanShapeFitter(SfmFitter):
    """Baseline fit stage "mean": the camera only, fitted to the mean shape (coeffs all zero)."""

    name = "mean"
    fits_shape = False

    def fit_points(self, points, visible=None, scores=None, contour=None, image_size=None) -> Fit3D:
        fit = super().fit_points(points, visible, scores, contour, image_size)
        return Fit3D(
            vertices=fit.vertices,
            camera=fit.camera,
            coeffs=np.zeros(self.model.n_shape),
            residual=fit.residual,
            expression=None,
        )
