"""Scaled-orthographic camera: projection, Euler angles, and estimation from 2D-3D correspondences.

Projection (model space in mm -> image pixels, x right, y DOWN)::

    u = s * (R X)_x + t_x
    v = -s * (R X)_y + t_y          (model y is up, image y is down)
    depth = s * (R X)_z             (pixels; larger = closer to the viewer)

i.e. ``[u, v]^T = P [X; 1]`` with the affine matrix ``P = [s F R_{1:2} | t]``, ``F = diag(1, -1)``.

Euler convention (the AFLW2000-3D / 3DDFA ``Pose_Para`` convention, ``RotationMatrix.m``)::

    R = Rx(pitch) @ Ry(yaw) @ Rz(roll)
    Rx(p) = [[1, 0, 0], [0, cos p, sin p], [0, -sin p, cos p]]
    Ry(y) = [[cos y, 0, -sin y], [0, 1, 0], [sin y, 0, cos y]]
    Rz(r) = [[cos r, sin r, 0], [-sin r, cos r, 0], [0, 0, 1]]

so that (binding, SPEC section 4) **yaw > 0 turns the nose towards image-LEFT**, pitch > 0 turns
the nose up (the face looks up), roll > 0 lowers the image-right side of the face (a clockwise
in-plane rotation as seen in the image). Angles are in degrees; yaw is the middle angle, in
[-90, 90].

Estimation: the Gold Standard algorithm for an affine camera (Hartley & Zisserman, "Multiple View
Geometry", 2nd ed., Alg. 7.2: normalise, linear least squares for the 8 entries, denormalise), then
the nearest scaled-orthographic camera (rows of the 2x3 block projected onto the Stiefel manifold by
SVD, s = mean singular value, third row = cross product), as eos does, optionally refined by
Gauss-Newton / Levenberg-Marquardt on the 2D reprojection error (6 parameters: rotation vector, s,
t).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from pipeline.errors import FitError

_F = np.diag([1.0, -1.0])


# --- rotations ----------------------------------------------------------------------------------------------


def euler_to_rotation(yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """(3, 3) rotation for yaw / pitch / roll in degrees (module docstring convention)."""
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), np.sin(r), 0], [-np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rx @ ry @ rz


def rotation_to_euler(R: np.ndarray) -> tuple[float, float, float]:
    """(3, 3) rotation -> (yaw, pitch, roll) in degrees, yaw in [-90, 90] (inverse of
    :func:`euler_to_rotation`; at yaw = +-90 roll is set to 0)."""
    R = np.asarray(R, dtype=np.float64)
    # R[0, 2] = -sin(yaw); R[1, 2] = sin(p) cos(y); R[2, 2] = cos(p) cos(y);
    # R[0, 0] = cos(y) cos(r); R[0, 1] = cos(y) sin(r)
    yaw = np.degrees(np.arcsin(np.clip(-R[0, 2], -1.0, 1.0)))
    cy = np.hypot(R[0, 0], R[0, 1])
    if cy > 1e-6:
        pitch = np.degrees(np.arctan2(R[1, 2], R[2, 2]))
        roll = np.degrees(np.arctan2(R[0, 1], R[0, 0]))
    else:  # gimbal lock: yaw = +-90; put everything into pitch
        pitch = np.degrees(np.arctan2(-R[2, 1], R[1, 1])) if R[0, 2] < 0 else np.degrees(np.arctan2(R[2, 1], R[1, 1]))
        roll = 0.0
    return float(yaw), float(pitch), float(roll)


def _rodrigues(w: np.ndarray) -> np.ndarray:
    """Rotation vector (3,) -> (3, 3) (Rodrigues' formula)."""
    th = float(np.linalg.norm(w))
    if th < 1e-12:
        k = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
        return np.eye(3) + k
    k = w / th
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * kx + (1 - np.cos(th)) * (kx @ kx)


# --- the camera ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Camera:
    """Scaled-orthographic camera: R (3, 3) rotation, s pixels per mm, t (2,) image position (px) of
    the model origin. See the module docstring for the projection and the Euler convention."""

    R: np.ndarray
    s: float
    t: np.ndarray

    @classmethod
    def from_pose(
        cls,
        yaw: float = 0.0,
        pitch: float = 0.0,
        roll: float = 0.0,
        s: float = 1.0,
        t: tuple[float, float] | np.ndarray = (0.0, 0.0),
    ) -> "Camera":
        return cls(euler_to_rotation(yaw, pitch, roll), float(s), np.asarray(t, dtype=np.float64).reshape(2))

    @classmethod
    def from_dict(cls, d: "Camera | Mapping[str, Any]") -> "Camera":
        if isinstance(d, Camera):
            return d
        return cls(
            np.asarray(d["R"], dtype=np.float64).reshape(3, 3),
            float(d["s"]),
            np.asarray(d["t"], dtype=np.float64).reshape(2),
        )

    @property
    def angles(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees."""
        return rotation_to_euler(self.R)

    @property
    def yaw(self) -> float:
        return self.angles[0]

    @property
    def pitch(self) -> float:
        return self.angles[1]

    @property
    def roll(self) -> float:
        return self.angles[2]

    @property
    def P(self) -> np.ndarray:
        """(2, 4) affine projection matrix: [u, v] = P @ [X, Y, Z, 1]."""
        return np.hstack([self.s * (_F @ self.R[:2]), self.t.reshape(2, 1)])

    def project(self, X: np.ndarray) -> np.ndarray:
        """(..., 3) model points (mm) -> (..., 2) image pixels."""
        X = np.asarray(X, dtype=np.float64)
        return X @ (self.s * (_F @ self.R[:2])).T + self.t

    def depth(self, X: np.ndarray) -> np.ndarray:
        """(..., 3) model points -> (...,) depth in pixels (larger = closer to the viewer)."""
        return self.s * (np.asarray(X, dtype=np.float64) @ self.R[2])

    def view_direction_model(self) -> np.ndarray:
        """(3,) unit vector from the face toward the camera, in model space (R^T e_z)."""
        return self.R[2].copy()

    def to_dict(self) -> dict[str, Any]:
        """Plain dict as stored in :class:`pipeline.types.Fit3D`: ``model``, ``R`` (3, 3), ``t`` (2,),
        ``s``, ``yaw``/``pitch``/``roll`` (degrees), ``P`` (2, 4)."""
        yaw, pitch, roll = self.angles
        return {
            "model": "scaled_orthographic",
            "R": self.R.copy(),
            "t": self.t.copy(),
            "s": float(self.s),
            "yaw": yaw,
            "pitch": pitch,
            "roll": roll,
            "P": self.P,
        }


def project(vertices: np.ndarray, camera: "Camera | Mapping[str, Any]") -> np.ndarray:
    """Project (N, 3) model-space vertices (mm) to (N, 2) image pixels with a :class:`Camera` or a
    ``Fit3D.camera`` dict."""
    return Camera.from_dict(camera).project(vertices)


# --- estimation ---------------------------------------------------------------------------------------------


def _check_correspondences(x: np.ndarray, X: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    if x.ndim != 2 or x.shape[1] != 2 or X.shape != (len(x), 3):
        raise FitError(f"need (n, 2) image and (n, 3) model points, got {x.shape} and {X.shape}")
    if not (np.isfinite(x).all() and np.isfinite(X).all()):
        raise FitError("camera estimation got NaN or infinite coordinates")
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=np.float64).reshape(-1)
    if len(w) != len(x) or not np.isfinite(w).all() or (w < 0).any():
        raise FitError("weights must be finite, non-negative, one per point")
    if int((w > 0).sum()) < 4:
        raise FitError(f"camera estimation needs at least 4 weighted points, got {int((w > 0).sum())}")
    return w


def _similarity_normalise(pts: np.ndarray, w: np.ndarray) -> np.ndarray:
    """H&Z 4.4.4: translate the (weighted) centroid to 0, scale the mean distance to sqrt(dim)."""
    d = pts.shape[1]
    c = (w[:, None] * pts).sum(0) / w.sum()
    dist = (w * np.linalg.norm(pts - c, axis=1)).sum() / w.sum()
    if dist < 1e-9:
        raise FitError("points are coincident (all at one location)")
    k = np.sqrt(d) / dist
    T = np.eye(d + 1)
    T[:d, :d] *= k
    T[:d, d] = -k * c
    return T


def estimate_affine_camera(x: np.ndarray, X: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Gold Standard affine camera (H&Z Alg. 7.2), weighted: (n, 2) image points, (n, 3) model
    points, optional (n,) weights -> (2, 4) P minimising sum w_i ||P [X_i; 1] - x_i||^2.

    Raises :class:`FitError` for degenerate input (fewer than 4 points, coplanar / collinear model
    points, collinear image points, NaNs).
    """
    x = np.asarray(x, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    w = _check_correspondences(x, X, weights)
    keep = w > 0
    x, X, w = x[keep], X[keep], w[keep]
    T = _similarity_normalise(x, w)
    U = _similarity_normalise(X, w)
    xn = x @ T[:2, :2].T + T[:2, 2]
    Xh = np.hstack([X @ U[:3, :3].T + U[:3, 3], np.ones((len(X), 1))])
    sw = np.sqrt(w)[:, None]
    A = sw * Xh  # the two rows of P decouple: each solves A p = b
    sv = np.linalg.svd(A, compute_uv=False)
    if sv[-1] < 1e-6 * sv[0]:
        raise FitError("model points are coplanar or collinear: the camera is not determined")
    try:
        p, *_ = np.linalg.lstsq(A, sw * xn, rcond=None)  # (4, 2)
    except np.linalg.LinAlgError as e:  # pragma: no cover - lstsq on finite input converges
        raise FitError(f"camera estimation failed: {e}") from e
    Pn = np.vstack([p.T, [0, 0, 0, 1]])  # (3, 4) normalised affine camera
    P = np.linalg.inv(T) @ Pn @ U
    return P[:2]


def scaled_orthographic_from_affine(P: np.ndarray) -> Camera:
    """Nearest scaled-orthographic :class:`Camera` to a (2, 4) affine camera in image coordinates
    (y down): ``s R_{1:2} = U V^T * mean(singular values)`` of ``F P[:, :3]``; R's third row is
    the cross product of the first two (a proper rotation)."""
    A = _F @ np.asarray(P, dtype=np.float64)[:, :3]
    u, sv, vt = np.linalg.svd(A, full_matrices=False)
    r12 = u @ vt
    r3 = np.cross(r12[0], r12[1])
    R = np.vstack([r12, r3])
    return Camera(R, float(sv.mean()), np.asarray(P, dtype=np.float64)[:, 3].copy())


def refine_camera(
    cam: Camera, x: np.ndarray, X: np.ndarray, weights: np.ndarray | None = None, iterations: int = 10
) -> Camera:
    """Levenberg-Marquardt on the weighted 2D reprojection error over (rotation vector, log s, t).

    x (n, 2) px, X (n, 3) mm, weights (n,). Returns the refined camera (or ``cam`` when the start
    is already optimal)."""
    x = np.asarray(x, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    sw = np.sqrt(np.repeat(w, 2))
    R, s, t = cam.R.copy(), cam.s, cam.t.copy()

    def resid(R, s, t):
        return sw * (X @ (s * (_F @ R[:2])).T + t - x).reshape(-1)

    r = resid(R, s, t)
    cost = r @ r
    mu = 1e-3
    for _ in range(iterations):
        # Jacobian wrt a left-multiplied small rotation dw, d(log s), dt
        RX = X @ R.T  # (n, 3)
        J = np.zeros((len(x), 2, 6))
        # d(R X) / dw = -[RX]_x  (rows x, y only), then s F
        J[:, 0, 0] = 0.0
        J[:, 0, 1] = RX[:, 2]
        J[:, 0, 2] = -RX[:, 1]
        J[:, 1, 0] = -RX[:, 2]
        J[:, 1, 1] = 0.0
        J[:, 1, 2] = RX[:, 0]
        J[:, :, :3] *= s
        J[:, 1, :3] *= -1.0
        J[:, 0, 3] = s * RX[:, 0]
        J[:, 1, 3] = -s * RX[:, 1]
        J[:, 0, 4] = 1.0
        J[:, 1, 5] = 1.0
        J = J.reshape(-1, 6) * sw[:, None]
        H = J.T @ J
        g = J.T @ r
        improved = False
        for _ in range(8):
            try:
                d = -np.linalg.solve(H + mu * np.diag(np.diag(H) + 1e-9), g)
            except np.linalg.LinAlgError:
                mu *= 10
                continue
            R2 = _rodrigues(d[:3]) @ R
            s2 = s * float(np.exp(d[3]))
            t2 = t + d[4:]
            r2 = resid(R2, s2, t2)
            c2 = r2 @ r2
            if c2 < cost:
                gain = cost - c2
                R, s, t, r, cost = R2, s2, t2, r2, c2
                mu = max(mu / 10, 1e-9)
                improved = True
                break
            mu *= 10
        if not improved or gain <= 1e-9 * cost + 1e-18:
            break
    u, _, vt = np.linalg.svd(R)  # re-orthonormalise
    R = u @ vt
    return Camera(R, float(s), t)


def estimate_camera(x: np.ndarray, X: np.ndarray, weights: np.ndarray | None = None, refine: bool = True) -> Camera:
    """Scaled-orthographic camera from (n, 2) image points (px), (n, 3) model points (mm) and
    optional (n,) weights: Gold Standard affine (H&Z Alg. 7.2) -> nearest scaled orthographic ->
    optional Levenberg-Marquardt refinement. Raises :class:`FitError` on degenerate input."""
    P = estimate_affine_camera(x, X, weights)
    cam = scaled_orthographic_from_affine(P)
    if not np.isfinite(cam.s) or cam.s <= 0:
        raise FitError("camera estimation gave a non-positive scale (degenerate landmarks)")
    if refine:
        cam = refine_camera(cam, x, X, weights)
    return cam
