"""Shape + pose fitting: synthetic round trips, the stage classes, FitError cases."""

import numpy as np
import pytest

from pipeline.errors import FitError
from pipeline.registry import FITTERS
from pipeline.types import Fit3D, Landmarks
from recon3d.camera import Camera
from recon3d.fit import FitConfig, MeanShapeFitter, SfmFitter, check_landmarks, fit_landmarks, solve_tikhonov
from recon3d.model import aflw19_points, ibug68_points, load_model

FAR_LEFT = [0, 1, 6, 7, 15]  # image-left brow/eye/mouth points (hidden when yaw > 45)
FAR_RIGHT = [4, 5, 10, 11, 17]


@pytest.fixture(scope="module")
def model():
    return load_model()


def synthetic_faces(model, n, seed, noise_px=0.0, expression=False):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        alpha = rng.normal(0, 1, 63)
        beta = np.clip(rng.normal(0, 0.3, 6), 0, None) if expression else None
        V = model.shape(alpha, beta)
        pose = (rng.uniform(-80, 80), rng.uniform(-25, 25), rng.uniform(-20, 20))
        cam = Camera.from_pose(*pose, rng.uniform(1, 3), rng.uniform(100, 300, 2))
        x = cam.project(aflw19_points(model, V)) + rng.normal(0, noise_px, (19, 2))
        vis = np.ones(19, bool)
        if pose[0] > 45:
            vis[FAR_LEFT] = False
        if pose[0] < -45:
            vis[FAR_RIGHT] = False
        yield V, cam, pose, x, vis


def centred(V):
    return V - V.mean(0)


def test_round_trip_19_landmarks(model):
    errs, verr, merr = [], [], []
    for V, cam, pose, x, vis in synthetic_faces(model, 25, seed=1, noise_px=0.5):
        r = fit_landmarks(model, x, check_landmarks(x, vis, None), FitConfig(expression=False))
        errs.append(np.abs(np.array(r.camera.angles) - pose))
        verr.append(np.linalg.norm(centred(r.vertices) - centred(V), axis=1).mean())
        merr.append(np.linalg.norm(centred(model.mean) - centred(V), axis=1).mean())
        assert r.residual / cam.s < 2.5  # mm (the prior keeps ~1 mm of residual)
    errs = np.array(errs)
    assert errs.mean(0).max() < 3.5 and errs.max() < 12  # degrees (19 points cannot pin 63 PCs exactly)
    assert np.mean(verr) < np.mean(merr) and np.mean(verr) < 5.0  # mm, vs a ~150 mm face


def test_round_trip_dense_correspondences(model):
    """With 203 exact correspondences the fit explains the points to a fraction of a mm; pose and
    shape are close but not exact: a few degrees of rotation trade against PCA shape components
    (the known pose/shape ambiguity under scaled orthography)."""
    groups = tuple((v,) for v in range(0, model.n_vertices, 17))
    for V, cam, pose, _, _ in synthetic_faces(model, 4, seed=2):
        x = cam.project(V[[g[0] for g in groups]])
        r = fit_landmarks(model, x, np.ones(len(groups)), FitConfig(lam=1e-4, expression=False), groups=groups)
        assert r.residual / cam.s < 0.3  # mm
        assert np.abs(np.array(r.camera.angles) - pose).max() < 7.0
        assert np.linalg.norm(r.vertices - V, axis=1).mean() < 5.0


def test_linear_shape_step_is_exact_with_the_true_camera(model):
    """Eq. of fit.py step 2: with the camera known, the Tikhonov solution (lambda -> 0) recovers alpha."""
    from recon3d.fit import Correspondences, linear_system
    from recon3d.model import aflw19_vertex_groups

    rng = np.random.default_rng(8)
    alpha = rng.normal(0, 1, 10)
    V = model.shape(alpha)
    cam = Camera.from_pose(30, 10, 5, 2.0, (200, 200))
    corr = Correspondences.from_groups(tuple((v,) for v in range(0, model.n_vertices, 50)))
    A, b = linear_system(
        cam, corr.rows(model.basis3()[:, :, :10]), corr.points(model.mean), cam.project(corr.points(V))
    )
    assert np.allclose(solve_tikhonov(A, b, np.ones(len(b)), 1e-9), alpha, atol=1e-5)
    # the AFLW groups average vertices: the 3D landmark is the mean of the group
    c19 = Correspondences.from_groups(aflw19_vertex_groups(model))
    assert np.allclose(c19.points(V), aflw19_points(model, V))


def test_expression_is_recovered(model):
    from recon3d.fit import Correspondences, linear_system, nnls_tikhonov

    groups = tuple((v,) for v in range(0, model.n_vertices, 11))
    corr = Correspondences.from_groups(groups)
    beta = np.array([0, 0, 0, 0.8, 0, 0.3])
    V = model.shape(None, beta)
    cam = Camera.from_pose(20, 5, 0, 2.0, (200, 200))
    x = cam.project(corr.points(V))
    # the NNLS expression step with the true camera is exact
    A, b = linear_system(cam, corr.rows(model.expressions3()), corr.points(model.mean), x)
    assert np.allclose(nnls_tikhonov(A, b, np.ones(len(b)), 1e-9), beta, atol=1e-5)
    # the full alternation finds the dominant expression and explains the points
    r = fit_landmarks(model, x, np.ones(len(groups)), FitConfig(n_shape=0, lam_expression=1e-4), groups=groups)
    assert int(np.argmax(r.expression)) == 3 and r.residual / cam.s < 0.5 and abs(r.camera.yaw - 20) < 2


def test_contour_points_are_used(model):
    rng = np.random.default_rng(3)
    V = model.shape(rng.normal(0, 1, 63))
    cam = Camera.from_pose(35, 5, 0, 2.0, (200, 200))
    x = cam.project(aflw19_points(model, V))
    contour = cam.project(ibug68_points(model, V, cam.R))[:17]
    contour[8] = np.nan
    r = fit_landmarks(model, x, np.ones(19), contour=contour)
    assert len(r.contour_ids) == 16 and abs(r.camera.yaw - 35) < 4
    fit = SfmFitter().fit(None, Landmarks(x, np.ones(19, bool), np.ones(19)), contour=contour)
    assert fit.residual / fit.camera["s"] < 2.0  # mm


def test_stage_classes_and_registry(model):
    V, cam, pose, x, vis = next(synthetic_faces(model, 1, seed=4))
    lm = Landmarks(x, vis, np.ones(19))
    img = np.zeros((480, 640, 3), np.uint8)
    for name, cls in (("sfm", SfmFitter), ("mean", MeanShapeFitter)):
        f = FITTERS.create(name)
        assert isinstance(f, cls)
        fit = f.fit(img, lm)
        assert isinstance(fit, Fit3D) and fit.vertices.shape == (3448, 3) and np.isfinite(fit.residual)
        assert set(fit.camera) >= {"R", "t", "s", "yaw", "pitch", "roll", "P"}
        assert fit.camera["image_size"] == (640, 480) and fit.camera["fitter"] == name
        assert abs(fit.camera["yaw"] - pose[0]) < 10
    assert np.allclose(FITTERS.create("mean").fit(img, lm).vertices, model.mean)
    sfm = FITTERS.create("sfm").fit(img, lm)
    assert sfm.coeffs.shape == (63,) and sfm.expression.shape == (6,) and (sfm.expression >= 0).all()
    assert SfmFitter(lam=3.0).config.lam == 3.0


def test_low_score_points_count_less(model):
    V, cam, pose, x, vis = next(synthetic_faces(model, 1, seed=5))
    bad = x.copy()
    bad[13] += 40  # a wild nose tip ...
    scores = np.ones(19)
    scores[13] = 0.0  # ... with score 0 is ignored
    f = SfmFitter()
    hidden = np.ones(19, bool)
    hidden[13] = False
    ref = f.fit_points(x, hidden, None)
    ign = f.fit_points(bad, None, scores)
    assert np.allclose(ign.vertices, ref.vertices) and abs(ign.camera["yaw"] - ref.camera["yaw"]) < 1e-9
    half = scores.copy()
    half[13] = 0.2  # a low score pulls less than a full one
    lo, hi = f.fit_points(bad, None, half), f.fit_points(bad, None, None)
    assert abs(lo.camera["yaw"] - ref.camera["yaw"]) < abs(hi.camera["yaw"] - ref.camera["yaw"])


def test_fit_errors():
    f = SfmFitter()
    rng = np.random.default_rng(6)
    x = rng.uniform(0, 100, (19, 2))
    vis = np.zeros(19, bool)
    vis[:5] = True
    with pytest.raises(FitError, match="only 5 visible"):
        SfmFitter(fallback_weight=0.0).fit_points(x, vis, None)
    nan = x.copy()
    nan[3] = np.nan
    with pytest.raises(FitError, match="NaN.*right_brow_inner"):
        f.fit_points(nan, None, None)
    vis_nan = np.ones(19, bool)
    vis_nan[3] = False
    f.fit_points(np.where(np.isfinite(nan), nan, 0), vis_nan, None)  # an invisible NaN is simply unused
    line = np.column_stack([np.linspace(0, 100, 19), np.linspace(0, 50, 19)])
    with pytest.raises(FitError, match="collinear"):
        f.fit_points(line, None, None)
    with pytest.raises(FitError, match="coincide"):
        f.fit_points(np.ones((19, 2)), None, None)
    with pytest.raises(FitError, match="positive score"):
        f.fit_points(x, None, np.zeros(19))
    with pytest.raises(FitError):
        f.fit(None, None)


def test_solve_tikhonov_matches_normal_equations():
    rng = np.random.default_rng(7)
    A, b, w = rng.normal(size=(30, 8)), rng.normal(size=30), rng.uniform(0, 1, 30)
    x = solve_tikhonov(A, b, w, 0.5)
    assert np.allclose((A.T * w) @ (A @ x - b) + 0.5 * x, 0, atol=1e-10)
    with pytest.raises(FitError):
        solve_tikhonov(np.zeros((4, 3)), np.zeros(4), np.ones(4), 0.0)


def test_fallback_promotes_best_occluded_points(model):
    """A deep profile with only 4 points marked visible: the two best-scoring occluded points join
    with a reduced weight and the pose is still recovered; without the fallback it is a FitError."""
    from recon3d.fit import promote_occluded

    rng = np.random.default_rng(11)
    V = model.shape(rng.normal(0, 1, 63))
    cam = Camera.from_pose(75.0, 5.0, 0.0, 2.0, (150.0, 150.0))
    x = cam.project(aflw19_points(model, V))
    vis = np.zeros(19, bool)
    vis[[12, 13, 14, 18]] = True
    scores = np.full(19, 0.1)
    scores[[2, 8]] = 0.6  # the best occluded candidates
    v2, s2, n = promote_occluded(x, vis, scores, 6, 0.3)
    assert n == 2 and v2[[2, 8]].all() and np.allclose(s2[[2, 8]], 0.18) and v2.sum() == 6
    fit = SfmFitter().fit_points(x, vis, scores)
    assert fit.camera["fallback_points"] == 2
    assert abs(fit.camera["yaw"] - 75.0) < 10
    with pytest.raises(FitError, match="only 4 visible"):
        SfmFitter(fallback_weight=0.0).fit_points(x, vis, scores)
    # enough visible points: nothing promoted
    assert promote_occluded(x, np.ones(19, bool), None, 6, 0.3)[2] == 0
