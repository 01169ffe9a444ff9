"""Identify face photos against a gallery (1-vs-all, cosine similarity).

    python -m pipeline.identify PROBE... --gallery DIR [--top-k K] [--json FILE|-]
                                [--detector NAME] [--landmarker NAME] [--descriptor NAME]

PROBE is an image or a folder of images. Gallery layouts: ``DIR/<identity>/*.jpg`` or
``DIR/<identity>.jpg`` (several images of an identity are fused by their best score). Each
probe's largest face is matched (``--all-faces``: every face). Without ``--json`` a table is
printed; ``--json`` writes ``[{"probe", "status": "ok"|"no_face"|"error", "message",
"candidates": [{"identity", "score"}, ...]}]``, best first.
"""
from __future__ import annotations

import argparse
import sys

from pipeline.cli import (EXIT_CODES_HELP, EXIT_FAILED, EXIT_OK, add_stage_args, config_from_args, error_line,
                          expand_inputs, guarded_main, setup_logging, write_json)
from pipeline.errors import FaceError, InvalidImageError, NoFaceFoundError
from pipeline.gallery import enroll
from pipeline.imageio import load_image
from pipeline.pipeline import Pipeline


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipeline.identify", description=__doc__, epilog=EXIT_CODES_HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probes", nargs="+", metavar="PROBE", help="probe image files or folders")
    ap.add_argument("--gallery", required=True, metavar="DIR", help="gallery folder")
    ap.add_argument("--top-k", type=int, default=5, help="candidates to report per probe [5]")
    ap.add_argument("--json", metavar="FILE", help="write results as JSON to FILE (- for stdout)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_stage_args(ap, descriptor=True)
    return ap


def run(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    setup_logging(a.verbose)
    pipe = Pipeline(config_from_args(a))
    pipe.descriptor  # configuration errors surface before any work
    gallery = enroll(pipe, a.gallery, progress=not a.no_progress)
    probes = expand_inputs(a.probes)
    if not probes:
        error_line("no probe images found in the given paths")
        return EXIT_FAILED
    results, n_ok = [], 0
    for p in probes:
        rec = {"probe": str(p), "status": "ok", "message": "", "candidates": []}
        try:
            faces = pipe.run(load_image(p, a.max_pixels), until="describe")
            for f in faces:
                cands = gallery.match(f.signature.vector, a.top_k)
                results.append({**rec, "box": [round(v, 1) for v in f.detection.box],
                                "candidates": [{"identity": i, "score": round(s, 4)} for i, s in cands]})
            n_ok += 1
            continue
        except NoFaceFoundError as e:
            rec.update(status="no_face", message=str(e))
        except InvalidImageError as e:
            rec.update(status="error", message=str(e))
        except FaceError as e:
            if e.exit_code == 2:
                raise
            rec.update(status="error", message=str(e))
        error_line(rec["message"] if rec["message"].startswith(str(p)) else f"{p}: {rec['message']}")
        results.append(rec)
    if a.json:
        write_json(results, a.json)
    else:
        w = max(len(r["probe"]) for r in results)
        print(f"{'probe':<{w}}  status   best match (score)  next candidates")
        for r in results:
            c = r["candidates"]
            best = f"{c[0]['identity']} ({c[0]['score']:.3f})" if c else "-"
            rest = ", ".join(f"{x['identity']} ({x['score']:.3f})" for x in c[1:3])
            print(f"{r['probe']:<{w}}  {r['status']:<7}  {best:<18}  {rest}")
    return EXIT_OK if n_ok > 0 else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    return guarded_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
