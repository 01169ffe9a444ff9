"""Session 9: the check_identify.py CFP profile probes (subjects 126-225, abs(yaw) >= 60, 400 probes, 100 frontal
gallery photos) through `python -m pipeline.identify ... --json` with two versions of the project, compared
probe by probe: rank-1 of each, probes lost / won, the exact McNemar (sign) test on the probes that differ, and
the IoU of the two versions' face boxes.
    python docs/descriptors/diagnosis/cfp_pair9.py make DIR                 # DIR/gallery, DIR/probes
    (cd OTHER_CHECKOUT && python -m pipeline.identify DIR/probes --gallery DIR/gallery --json A.json)
    python docs/descriptors/diagnosis/cfp_pair9.py compare A.json B.json"""
import csv, json, os, shutil, sys
import numpy as np
sys.path.insert(0, '.')


def make(out, root='../shared/data/cfp_dev', lo='126', hi='225', yaw_min=60.0):
    """The folders check_identify.py builds (same gallery rule: each subject's first yaw 0 / pitch 0 photo)."""
    man = [r for r in csv.DictReader(open(f"{root}/manifest.csv")) if lo <= r['subject'] <= hi]
    os.makedirs(f"{out}/gallery"), os.makedirs(f"{out}/probes")
    seen = set()
    for r in man:
        ext = os.path.splitext(r["path"])[1]
        role = r.get("role") or ("gallery" if float(r["yaw"]) == 0 and float(r["pitch"]) == 0 and r["subject"] not in seen else "probe")
        if role == "gallery":
            seen.add(r["subject"])
            shutil.copy(f"{root}/{r['path']}", f"{out}/gallery/{r['subject']}{ext}")
        elif role == "probe" and abs(float(r["yaw"])) >= yaw_min:
            shutil.copy(f"{root}/{r['path']}", f"{out}/probes/{r['subject']}__{r['path'].replace('/', '_')}")
    print(len(seen), 'gallery identities,', len(os.listdir(f"{out}/probes")), 'probes')


def compare(fa, fb):
    from scipy.stats import binomtest

    from pipeline.detection.boxes import iou

    def load(f):
        out = {}
        for r in json.load(open(f)):
            out.setdefault(os.path.basename(r['probe']), r)  # the first face of each probe
        return out

    def hit(r, n):
        return bool(r.get('candidates')) and r['candidates'][0]['identity'] == n.split('__')[0]

    a, b = load(fa), load(fb)
    lost = [n for n in a if hit(a[n], n) and not hit(b[n], n)]
    won = [n for n in a if not hit(a[n], n) and hit(b[n], n)]
    print(f"rank-1 A {100 * sum(hit(r, n) for n, r in a.items()) / len(a):.1f} %, B {100 * sum(hit(r, n) for n, r in b.items()) / len(b):.1f} % "
          f"({len(a)} probes); B lost {len(lost)}, won {len(won)}; exact McNemar p = "
          f"{binomtest(len(lost), len(lost) + len(won), 0.5).pvalue if lost or won else 1.0:.3f}")
    both = [n for n in a if 'box' in a[n] and 'box' in b.get(n, {})]
    io = np.array([iou(a[n]['box'], b[n]['box']) for n in both])
    print(f"face boxes A vs B: median IoU {np.median(io):.3f}, below 0.5: {int((io < 0.5).sum())} of {len(io)}; "
          f"status differs on {sum(a[n]['status'] != b[n]['status'] for n in a if n in b)}")


if __name__ == '__main__':
    make(sys.argv[2]) if sys.argv[1] == 'make' else compare(sys.argv[2], sys.argv[3])
