"""Synthetic UHDB31-protocol identification set: a synthetic reproduction of the UHDB31 protocol (77
subjects x 21 poses), NOT UHDB31 itself (no UHDB31 images exist offline).

    python -m facedata.uhdb31                          # generated/uhdb31_256 and generated/uhdb31_128
    python -m facedata.uhdb31 --subjects 5 --out-root generated/uhdb31_small
    python -m facedata.uhdb31 --orl-sheet s003 --sheet-dir docs/data   # openly licensed figure only

Subjects: CFP evaluation subjects 126-202 (splits.json "uhdb31_protocol"), read from --data.
Per subject:
  gallery  the REAL photo frontal/01.jpg, cropped and scaled (no other change) so that its face is
           framed like the renders' frontal pose (face box max side = --face-frac x W, centred);
  probes   a DIFFERENT real frontal photo of the same subject (the first of frontal/02..10 that is
           detected by dlib HOG, fits with a small residual, has abs(fitted yaw) <= 20 and an eye
           distance >= 20 px), fitted (dlib 19 points + jaw contour), its texture lifted and completed, and
           re-rendered at yaw -90..90 step 30 x pitch -30/0/+30 with nuisance the gallery lacks:
           random lighting, background (face-free patches of the annotated dlib_faces scene photos, noise,
           gradients, flat), blur, sensor noise, JPEG quality, an added expression blendshape, and shape
           coefficients perturbed beyond the fit (N(0, 0.4) on the first 20);
  the yaw 0 / pitch 0 render of the probe photo is written with role "unused": the protocol's 20
  probes are the other poses (UHDB31: gallery = the frontal pose), and the frontal render is kept for
  a same-pose sanity figure.
Renders are made at 256x306; the 128x153 set is their exact 2x area downsampling (like the paper's
1/4 and 1/8 of 1024x1224). Each folder holds manifest.csv (path,subject,yaw,pitch,role + provenance
and the known face box), annotations.jsonl (the renders' exact 19 landmarks, SPEC landmark-set
format), params.json and README.md.

Deterministic: every render is seeded by (--seed, subject, pose). Cached: when params.json of every
requested folder matches the parameters and all listed files exist, nothing is done (--force redoes).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facedata.paths import REPO, add_log_arguments, data_root
from facedata.profiling import PhotoLandmarks, cfp_fiducial_box, donor_items, load_rgb, upscale
from facedata.recipe import (
    DonorPool,
    NuisanceConfig,
    RenderSpec,
    contact_sheet,
    downsample2,
    encode_jpeg,
    frame_photo,
    prepare_source,
    sample_nuisance,
    sample_rng,
    synthesize,
)
from pipeline.cli import guarded_main, setup_logging
from pipeline.errors import ConfigError, FaceError
from pipeline.types import NUM_LANDMARKS
from recon3d.export import atomic_write_bytes, save_png

log = logging.getLogger("facedata.uhdb31")

DEFAULT_DATA = data_root()
DEFAULT_OUT_ROOT = REPO / "generated"
YAWS = (-90, -60, -30, 0, 30, 60, 90)
PITCHES = (-30, 0, 30)
VERSION = 5  # bump whenever the generated files change for the same parameters (invalidates caches)
MANIFEST_COLUMNS = (
    "path",
    "subject",
    "yaw",
    "pitch",
    "role",
    "roll",
    "kind",
    "source_photo",
    "box_x0",
    "box_y0",
    "box_x1",
    "box_y1",
    "fitted_yaw",
    "fit_residual_px",
)


def probe_nuisance() -> NuisanceConfig:
    """The probes' nuisance (no grey conversion, no source-photo background)."""
    return NuisanceConfig(
        brightness=(0.75, 1.15),
        diffuse=(0.1, 0.6),
        light_min_z=0.35,
        background=(("border", 0.4), ("noise", 0.25), ("gradient", 0.2), ("flat", 0.15)),
        colour_gain=0.08,
        p_grey=0.0,
        p_lowres=0.1,
        lowres=(0.5, 0.8),
        p_blur=0.4,
        blur=(0.4, 1.2),
        p_noise=0.3,
        noise=(2.0, 6.0),
        jpeg=(60, 95),
        p_shape=1.0,
        shape_n=20,
        shape_sigma=0.4,
        p_expression=0.6,
        expression_max_mm=6.0,
    )


@dataclass(frozen=True)
class Uhdb31Config:
    """width x height: the render size (the small set is half of it); face_frac: the frontal face box's
    max side as a fraction of the width; uv_size: texture side; min_conf: texels seen at a lower
    confidence are filled (see :class:`facedata.recipe.ProfilingConfig`); probe rules: max_probe_yaw (degrees),
    min_probe_iod (px, in the photo as fitted), max_residual (fraction of the landmark box size);
    gallery_jpeg: JPEG quality of the gallery crops; nuisance: the probes' :class:`NuisanceConfig`."""

    width: int = 256
    height: int = 306
    face_frac: float = 0.5
    uv_size: int = 256
    min_conf: float = 0.25
    max_probe_yaw: float = 20.0
    min_probe_iod: float = 20.0
    max_residual: float = 0.05
    gallery_jpeg: int = 95
    nuisance: NuisanceConfig = field(default_factory=probe_nuisance)


# --- subjects ------------------------------------------------------------------------------------------------


def cfp_subject(data: Path, sid: str) -> dict:
    root = data / "cfp_dev"
    photos = [f"images/{sid}/frontal/{k:02d}.jpg" for k in range(1, 11)]
    return {
        "id": sid,
        "set": "cfp_eval",
        "root": root,
        "gallery": photos[0],
        "candidates": photos[1:],
        "fiducials": {p: root / p.replace("images/", "fiducials/").replace(".jpg", ".txt") for p in photos},
    }


def orl_subject(data: Path, sid: str) -> dict:
    root = data / "faces" / "orl"
    photos = [f"{sid}_{k:02d}.png" for k in range(10)]
    return {"id": sid, "set": "orl", "root": root, "gallery": photos[0], "candidates": photos[1:], "fiducials": {}}


class SubjectRenderer:
    """Fits, frames and renders the 21 poses of one subject (the module docstring's rules)."""

    def __init__(self, cfg: Uhdb31Config, seed: int, donors: list):
        from recon3d.fit import SfmFitter
        from recon3d.model import load_model

        self.cfg, self.seed = cfg, seed
        self.fitter = SfmFitter()
        self.model = load_model()
        self.photo = PhotoLandmarks(whole_image_fallback=False)
        self.pool = DonorPool(donors, lambda p: load_rgb(Path(p))) if donors else None

    def _landmarks(self, subj: dict, rel: str):
        img, scale = upscale(load_rgb(subj["root"] / rel))
        fid = subj["fiducials"].get(rel)
        fb = cfp_fiducial_box(fid) if fid is not None else None
        if fb is not None:
            fb = tuple(v * scale for v in fb)
        pts, box, how, contour = self.photo(img, fallback_box=fb)
        return img, pts, how, contour

    def gallery(self, subj: dict):
        """(256 image, face box, fit) of the real gallery photo, framed."""
        cfg = self.cfg
        img, pts, how, contour = self._landmarks(subj, subj["gallery"])
        fit = self.fitter.fit_points(
            pts, np.ones(NUM_LANDMARKS, bool), None, contour=contour, image_size=(img.shape[1], img.shape[0])
        )
        out, _, box = frame_photo(img, fit, cfg.width, cfg.height, cfg.face_frac * cfg.width, model=self.model)
        return out, box, fit, how

    def probe_source(self, subj: dict):
        """The first candidate photo that passes every probe rule -> (ProfilingSource, photo rel path,
        reasons of the skipped ones). When none passes, the fitted candidate with the smallest
        abs(yaw) is taken (noted as "relaxed" in the reasons)."""
        cfg = self.cfg
        skipped, fallback = {}, []
        for rel in subj["candidates"]:
            try:
                img, pts, how, contour = self._landmarks(subj, rel)
                src = prepare_source(
                    f"uhdb31/{subj['id']}",
                    img,
                    pts,
                    None,
                    {"source_set": subj["set"], "source_image": rel, "identity": subj["id"]},
                    self.fitter,
                    cfg.uv_size,
                    cfg.min_conf,
                    cfg.max_residual,
                    contour=contour,
                )
            except FaceError as e:
                skipped[rel] = str(e)
                continue
            yaw = float(src.fit.camera["yaw"])
            iod = float(np.linalg.norm(pts[7] - pts[10]))
            why = (
                "not detected by dlib HOG"
                if how != "hog"
                else f"eye distance {iod:.1f} px < {cfg.min_probe_iod:g}"
                if iod < cfg.min_probe_iod
                else f"fitted yaw {yaw:.1f} beyond {cfg.max_probe_yaw:g}"
                if abs(yaw) > cfg.max_probe_yaw
                else None
            )
            if why is None:
                return src, rel, skipped
            skipped[rel] = why
            fallback.append((abs(yaw), rel, src))
        if fallback:
            _, rel, src = min(fallback, key=lambda t: t[0])
            skipped["relaxed"] = f"no candidate passed every rule; took {rel}"
            log.warning("subject %s: %s", subj["id"], skipped["relaxed"])
            return src, rel, skipped
        raise FaceError(f"subject {subj['id']}: no probe photo could be fitted ({skipped})")

    def render(self, src, yaw: int, pitch: int, index: int):
        cfg = self.cfg
        rng = sample_rng(self.seed, src.key, index)
        nz = sample_nuisance(
            rng,
            cfg.nuisance,
            yaw=yaw,
            pitch=pitch,
            source=src,
            n_donors=len(self.pool) if self.pool else 0,
            model=self.model,
            allow_grey=False,
        )
        spec = RenderSpec(
            yaw=float(yaw),
            pitch=float(pitch),
            roll=0.0,
            width=cfg.width,
            height=cfg.height,
            face_px=cfg.face_frac * cfg.width,
            center=((cfg.width - 1) / 2, (cfg.height - 1) / 2),
            constant_scale=True,
            **nz,
        )
        return synthesize(src, spec, self.pool, self.model)

    def subject(self, subj: dict) -> dict:
        """Everything of one subject: gallery and 21 renders with metadata (images not yet encoded)."""
        g_img, g_box, g_fit, g_how = self.gallery(subj)
        src, probe_rel, skipped = self.probe_source(subj)
        renders = []
        for i, (pitch, yaw) in enumerate((p, y) for p in PITCHES for y in YAWS):
            renders.append((yaw, pitch, self.render(src, yaw, pitch, i)))
        return {"gallery": (g_img, g_box, g_fit, g_how), "probe": (src, probe_rel, skipped), "renders": renders}


# --- writing -------------------------------------------------------------------------------------------------


def scale_box(box, k: int):
    return tuple((v + 0.5) / k - 0.5 for v in box)


def rows_for(
    sid: str, res: dict, factor: int, gallery_rel: str
) -> tuple[list[dict], list[tuple[str, bytes]], list[dict]]:
    """Manifest rows, (path, JPEG bytes) files and annotation lines of one subject at 1/factor size."""
    g_img, g_box, g_fit, g_how = res["gallery"]
    src, probe_rel, _ = res["probe"]
    rows, files, ann = [], [], []
    img = downsample2(g_img) if factor == 2 else g_img
    path = f"images/{sid}/gallery.jpg"
    files.append((path, encode_jpeg(img, 95, grey=False)))
    b = scale_box(g_box, factor)
    rows.append(
        {
            "path": path,
            "subject": sid,
            "yaw": 0,
            "pitch": 0,
            "role": "gallery",
            "roll": 0,
            "kind": "photo",
            "source_photo": gallery_rel,
            "box_x0": b[0],
            "box_y0": b[1],
            "box_x1": b[2],
            "box_y1": b[3],
            "fitted_yaw": round(float(g_fit.camera["yaw"]), 2),
            "fit_residual_px": round(float(g_fit.residual), 3),
        }
    )
    for yaw, pitch, s in res["renders"]:
        img = downsample2(s.image) if factor == 2 else s.image
        path = f"images/{sid}/y{yaw:+03d}_p{pitch:+03d}.jpg"
        files.append((path, encode_jpeg(img, s.spec.jpeg, s.spec.grey)))
        b = scale_box(s.box, factor)
        role = "unused" if (yaw, pitch) == (0, 0) else "probe"
        rows.append(
            {
                "path": path,
                "subject": sid,
                "yaw": yaw,
                "pitch": pitch,
                "role": role,
                "roll": 0,
                "kind": "render",
                "source_photo": probe_rel,
                "box_x0": b[0],
                "box_y0": b[1],
                "box_x1": b[2],
                "box_y1": b[3],
                "fitted_yaw": round(float(src.fit.camera["yaw"]), 2),
                "fit_residual_px": round(float(src.fit.residual), 3),
            }
        )
        lm = (s.landmarks + 0.5) / factor - 0.5
        ann.append(
            {
                "image": path,
                "box": [round(v, 3) for v in b],
                "landmarks": [[round(float(x), 3), round(float(y), 3)] for x, y in lm],
                "visible": [int(v) for v in s.visible],
                "known": [1] * NUM_LANDMARKS,
                "yaw": yaw,
                "pitch": pitch,
                "roll": 0,
                "source_set": "cfp_eval",
                "source_image": probe_rel,
                "identity": f"cfp:{sid}",
                "render": s.spec.to_json(),
                "licence": "CFP research use; render of a research image: do not commit",
            }
        )
    return rows, files, ann


def csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue().encode()


README_TEXT = """# Synthetic UHDB31-protocol set ({w}x{h}) — a synthetic reproduction of the UHDB31 protocol, not UHDB31

Made by `facedata/uhdb31.py` (parameters in `params.json`). {n} CFP evaluation subjects
(126-202) x 21 poses (yaw -90..90 step 30 x pitch -30/0/+30). Research-derived (CFP): never commit or
ship these files.

- `manifest.csv`: `path,subject,yaw,pitch,role` + `roll,kind,source_photo,box_x0..box_y1` (the known
  AFLW-convention face box, for when a detector finds nothing), `fitted_yaw`, `fit_residual_px` (of the
  fit to the source photo, in its pixels).
  role `gallery`: the subject's real `frontal/01.jpg`, cropped/scaled only; `probe`: renders of a
  different real frontal photo at the 20 non-frontal poses; `unused`: that photo's yaw 0 / pitch 0
  render (kept for a same-pose sanity figure; UHDB31's gallery is the frontal pose, so the protocol
  has 20 probes).
- `annotations.jsonl`: the renders' exact 19 landmarks (SPEC landmark-set format, `known` = 1 for all).

Why it is not circular: gallery and probes come from different real photos (different day, lighting,
expression, camera); the probes carry nuisance the gallery lacks (lighting, background, blur, noise,
JPEG, an added expression, shape coefficients perturbed beyond the fit). What it cannot show: the side
of the head the probe photo did not see is synthesised (mirror texels and inpainting); the Surrey Face
Model is a face mask, so renders have no hair, ears, neck or shoulders (the gallery photos do); an open
mouth is painted dark; renders are cleaner than photos (no occlusion, exact pose, orthographic camera),
while their missing context (hair, head outline) makes them harder for detectors and 2D descriptors.
"""


# --- cache ---------------------------------------------------------------------------------------------------


def params_for(cfg: Uhdb31Config, seed: int, subjects: list[str], data: Path, factor: int) -> dict:
    return {
        "version": VERSION,
        "seed": seed,
        "subjects": subjects,
        "config": asdict(cfg),
        "factor": factor,
        "width": cfg.width // factor,
        "height": cfg.height // factor,
        "yaws": list(YAWS),
        "pitches": list(PITCHES),
        "data": str(data),
    }


def is_current(folder: Path, params: dict) -> bool:
    try:
        old = json.loads((folder / "params.json").read_text())
        if old.get("params") != json.loads(json.dumps(params)):
            return False
        with open(folder / "manifest.csv") as f:
            return all((folder / r["path"]).exists() for r in csv.DictReader(f))
    except (OSError, ValueError, KeyError):
        return False


def out_dirs(out_root: Path, res: list[int]) -> dict[int, Path]:
    return {r: out_root / f"uhdb31_{r}" for r in res}


def generate(
    data: Path = DEFAULT_DATA,
    out_root: Path = DEFAULT_OUT_ROOT,
    res: tuple[int, ...] = (256, 128),
    seed: int = 0,
    n_subjects: int | None = None,
    force: bool = False,
    cfg: Uhdb31Config = Uhdb31Config(),
) -> dict[int, Path]:
    """Make (or find cached) the synthetic UHDB31-protocol set(s); returns {res: folder}."""
    from facedata.splits import cfp_subjects

    if not (data / "cfp_dev" / "images").is_dir():
        raise ConfigError(f"{data / 'cfp_dev' / 'images'} not found: pass --data DIR (the folder holding cfp_dev/)")
    factors = {}
    for r in res:
        if r == cfg.width:
            factors[r] = 1
        elif r * 2 == cfg.width:
            factors[r] = 2
        else:
            raise ConfigError(f"--res {r}: only {cfg.width} and {cfg.width // 2} are made")
    subjects = cfp_subjects("uhdb31")[: n_subjects or None]
    dirs = out_dirs(out_root, list(res))
    params = {r: params_for(cfg, seed, subjects, data, factors[r]) for r in res}
    if not force and all(is_current(dirs[r], params[r]) for r in res):
        log.info("up to date: %s", ", ".join(str(d) for d in dirs.values()))
        return dirs
    for d in dirs.values():
        if d.exists():
            if not (d / "params.json").exists() and any(d.iterdir()):
                raise ConfigError(f"{d} exists and was not made by this script: remove it or pass another --out-root")
            shutil.rmtree(d)
        d.mkdir(parents=True)
    t0 = time.perf_counter()
    rend = SubjectRenderer(cfg, seed, donor_items(data))
    manifest = {r: [] for r in res}
    ann = {r: [] for r in res}
    choices = {}
    for sid in tqdm(subjects, desc="uhdb31 subjects", unit="subj"):
        subj = cfp_subject(data, sid)
        try:
            out = rend.subject(subj)
        except FaceError as e:
            log.warning("subject %s left out: %s", sid, e)
            choices[sid] = {"error": str(e)}
            continue
        src, probe_rel, skipped = out["probe"]
        choices[sid] = {
            "gallery": subj["gallery"],
            "probe": probe_rel,
            "skipped": skipped,
            "gallery_landmarks": out["gallery"][3],
        }
        for r in res:
            rows, files, lines = rows_for(sid, out, factors[r], subj["gallery"])
            for path, data_bytes in files:
                atomic_write_bytes(dirs[r] / path, data_bytes)
            manifest[r] += rows
            ann[r] += lines
    wall = time.perf_counter() - t0
    n_img = sum(len(v) for v in manifest.values())
    for r in res:
        d = dirs[r]
        atomic_write_bytes(d / "manifest.csv", csv_bytes(manifest[r]))
        atomic_write_bytes(
            d / "annotations.jsonl", "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in ann[r]).encode()
        )
        atomic_write_bytes(
            d / "README.md",
            README_TEXT.format(w=cfg.width // factors[r], h=cfg.height // factors[r], n=len(subjects)).encode(),
        )
        meta = {
            "params": params[r],
            "subjects": choices,
            "seconds_all_resolutions": round(wall, 1),
            "images_all_resolutions": n_img,
            "images_per_s": round(n_img / max(wall, 1e-9), 2),
        }
        atomic_write_bytes(d / "params.json", (json.dumps(meta, indent=1) + "\n").encode())
    print(
        f"{len(subjects)} subjects, {n_img} images ({', '.join(str(r) for r in res)}) in {wall:.1f} s "
        f"({n_img / max(wall, 1e-9):.2f} images/s) -> {', '.join(str(d) for d in dirs.values())}"
    )
    return dirs


def ensure_set(res: int, data: Path = DEFAULT_DATA, out_root: Path = DEFAULT_OUT_ROOT, seed: int = 0) -> Path:
    """The folder of the synthetic set at ``res`` (256 or 128), generating both resolutions when needed
    (for ``benchmarks/uhdb31_rank1.py`` without --data)."""
    return generate(data, out_root, (256, 128), seed)[int(res)]


# --- the openly licensed figure ------------------------------------------------------------------------------


def orl_sheet(data: Path, sid: str, sheet_dir: Path, seed: int, cfg: Uhdb31Config = Uhdb31Config()) -> list[Path]:
    """Contact sheets (256x306 and 128x153) of one ORL subject through the same recipe: gallery = ORL
    image 0, probes = renders of the first other ORL image that fits, 3 rows (pitch +30, 0, -30) x
    7 yaws; the first column holds the gallery. Grey, 16 levels; the 256 sheet shows the central
    face region of each tile at native resolution (file size)."""
    if not (data / "faces" / "orl" / f"{sid}_00.png").exists():
        raise ConfigError(
            f"{data / 'faces' / 'orl' / (sid + '_00.png')} not found: pass --data DIR and an ORL subject like s003"
        )
    rend = SubjectRenderer(cfg, seed, [])
    subj = orl_subject(data, sid)
    out = rend.subject(subj)
    paths = []
    for factor in (1, 2):

        def tile(im: np.ndarray, factor: int = factor) -> np.ndarray:
            im = downsample2(im) if factor == 2 else im
            if factor == 1:  # keep the native pixels of the face region only (file size)
                h, w = im.shape[:2]
                cw, ch = int(1.25 * cfg.face_frac * w), int(1.55 * cfg.face_frac * w)
                x0, y0 = (w - cw) // 2, (h - ch) // 2
                im = im[y0 : y0 + ch, x0 : x0 + cw]
            return im

        g = tile(out["gallery"][0])
        blank = np.full_like(g, 255)
        grid = {(y, p): s for y, p, s in out["renders"]}
        tiles, labels = [], []
        for p in (30, 0, -30):
            tiles.append(g if p == 0 else blank)
            labels.append("gallery" if p == 0 else "")
            for y in YAWS:
                tiles.append(tile(grid[(y, p)].image))
                labels.append(f"{y:+d}/{p:+d}" + (" unused" if (y, p) == (0, 0) else ""))
        sheet = contact_sheet(tiles, ncols=len(YAWS) + 1, labels=labels)
        path = sheet_dir / f"uhdb31_orl_{sid}_{cfg.width // factor}.png"
        save_png(path, sheet.mean(2).astype(np.uint8), palette=16)
        paths.append(path)
        print(f"sheet {path} ({path.stat().st_size / 1024:.0f} KB); probe photo {out['probe'][1]}")
    return paths


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m facedata.uhdb31",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"shared data folder with cfp_dev/ [{DEFAULT_DATA}]"
    )
    ap.add_argument(
        "--out-root",
        type=Path,
        default=DEFAULT_OUT_ROOT,
        help=f"parent of the uhdb31_256/ and uhdb31_128/ folders [{DEFAULT_OUT_ROOT}]",
    )
    ap.add_argument("--res", default="256,128", help="which resolutions (widths) to write: 256 and/or 128 [256,128]")
    ap.add_argument("--seed", type=int, default=0, help="master seed [0]")
    ap.add_argument("--subjects", type=int, default=None, help="only the first N of the 77 subjects (tests) [all]")
    ap.add_argument(
        "--face-frac",
        type=float,
        default=Uhdb31Config.face_frac,
        help=f"frontal face box max side / image width [{Uhdb31Config.face_frac}]",
    )
    ap.add_argument("--force", action="store_true", help="regenerate even when the cached set matches")
    ap.add_argument(
        "--orl-sheet",
        metavar="SUBJECT",
        default=None,
        help="instead of the set: contact sheets of one ORL subject (e.g. s003), openly licensed",
    )
    ap.add_argument(
        "--sheet-dir", type=Path, default=REPO / "docs" / "data", help="where --orl-sheet writes [docs/data]"
    )
    add_log_arguments(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    setup_logging(a.verbose)
    log.setLevel(logging.INFO)
    cfg = Uhdb31Config(face_frac=a.face_frac)
    if not 0.1 <= a.face_frac <= 0.8:
        raise ConfigError("--face-frac must be between 0.1 and 0.8")
    data = a.data.resolve()
    if a.orl_sheet:
        orl_sheet(data, a.orl_sheet, a.sheet_dir, a.seed, cfg)
        return 0
    try:
        res = tuple(int(r) for r in a.res.split(","))
    except ValueError as e:
        raise ConfigError(f"--res: expected comma-separated widths like 256,128, got {a.res!r}") from e
    generate(data, a.out_root.resolve(), res, a.seed, a.subjects, a.force, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(guarded_main(main))
