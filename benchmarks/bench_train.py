"""Memory, disk and time of training on N full-size phantom CTs (streamed fit).

Writes ``max(N)`` phantom cases of ``512 x 512 x 180-250`` voxels at about
0.6-0.9 mm (NIH Pancreas-CT's grid) as NIfTI, then for each N runs, in a
fresh process under ``/usr/bin/time -v``::

    pancreas train --images ... --labels ... --preset cpu --epochs 1 \\
        --work-dir WORK --seed 0

on the first N cases and prints, per N: peak resident memory (as ``time -v``
reports it: pages of files read count there too), the work folder's size on
disk, wall time and the time of each stage (case preparation: superpixels
and features; forests; candidates; ConvNet; refiner), then the per-case
slopes and their extrapolation to 60 and 281 cases.

With ``--shared-work`` (the default) every N uses one work folder, so a
larger N prepares only its new cases: the preparation time is then per new
case, the other stages are timed in full. ``--crops`` also measures the
ConvNet's crop throughput from the CT files on disk against the same crops
from in-memory arrays (patches/s).

Usage::

    python benchmarks/bench_train.py --sizes 4 8 16 --json train.json
    python benchmarks/bench_train.py --sizes 2 3 --shape 128 128 40   # small
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_utils import format_table, machine_info, write_json  # noqa: E402


def _write_cases(folder: Path, n: int, shape: tuple[int, int, int], seed: int) -> None:
    from pancreas.io import save_volume
    from pancreas.phantom import make_phantom_cohort

    rng = np.random.default_rng(seed)
    for i in range(n):
        img = folder / "images" / f"case{i:03d}.nii.gz"
        lab = folder / "labels" / f"case{i:03d}.nii.gz"
        if img.is_file() and lab.is_file():
            continue
        nz = shape[2] if shape[2] > 0 else int(rng.integers(180, 251))
        (ct,), (label,) = make_phantom_cohort(
            1, shape=(shape[0], shape[1], nz), random_state=seed * 1000 + i
        )
        save_volume(ct, img)
        save_volume(label, lab)


def _subset(folder: Path, n: int) -> Path:
    """A folder of symbolic links to the first ``n`` cases."""
    sub = folder / f"first{n}"
    for kind in ("images", "labels"):
        (sub / kind).mkdir(parents=True, exist_ok=True)
        for src in sorted((folder / kind).glob("case*.nii.gz"))[:n]:
            link = sub / kind / src.name
            if not link.exists():
                link.symlink_to(src.resolve())
    return sub


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _run(sub: Path, work: Path, model: Path, epochs: int, preset: str) -> dict:
    exe = Path(sys.executable).with_name("pancreas")
    cmd = ["/usr/bin/time", "-v", str(exe), "train",
           "--images", str(sub / "images" / "*.nii.gz"),
           "--labels", str(sub / "labels" / "*.nii.gz"),
           "--preset", preset, "--epochs", str(epochs), "--seed", "0",
           "--work-dir", str(work), "-o", str(model), "--overwrite"]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"training failed:\n{done.stderr[-4000:]}")
    err = done.stderr
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)[1])
    stages = {}
    found = re.search(r"stage times: (.*)", err)
    if found:
        for part in found[1].split(", "):
            name, value, _ = part.rsplit(" ", 2)
            stages[name] = float(value)
    counts = {}
    found = re.search(r"work folder: (.*)", err)
    if found:
        for part in found[1].split(", "):
            value, name = part.split(" ", 1)
            counts[name] = int(value)
    return {"wall_s": round(wall, 1), "peak_rss_gb": round(peak_kb / 2**20, 3),
            "stages_s": stages, "counts": counts}  # fmt: skip


def _crop_throughput(work: Path, batches: int = 40, batch: int = 128) -> dict:
    """Patches/s of 32x32 crops from the CT files on disk vs in-memory arrays."""
    from pancreas._store import DiskVolume
    from pancreas.patches import sample_patches

    cases = sorted(p for p in (work / "cases").iterdir() if p.is_dir())[:8]
    disk = [DiskVolume(c / "volume.npy") for c in cases]
    spacing = [tuple(json.loads((c / "meta.json").read_text())["spacing"]) for c in cases]
    memory = [d.read().astype(np.float32) for d in disk]
    rng = np.random.default_rng(0)
    plan = []
    for _ in range(batches):
        which = rng.integers(0, len(cases), batch)
        boxes = []
        for c in which:
            shape = disk[c].shape
            boxes.append([rng.integers(0, shape[2]), rng.uniform(0, shape[0]),
                          rng.uniform(0, shape[1]), rng.uniform(12, 90)])  # fmt: skip
        plan.append((which, np.asarray(boxes)))
    out = {}
    for name, volumes in (("in_memory", memory), ("from_disk", disk)):
        start = time.perf_counter()
        for which, boxes in plan:
            for c in np.unique(which):
                sel = which == c
                sample_patches(volumes[c], spacing[c], boxes[sel], patch_size=32)
        out[f"{name}_patches_per_s"] = round(batches * batch / (time.perf_counter() - start))
    out["disk_vs_memory"] = round(out["from_disk_patches_per_s"] / out["in_memory_patches_per_s"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--shape", type=int, nargs=3, default=[512, 512, 0],
                        help="grid; a last value of 0 draws 180-250 slices per case")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--folder", default="benchmarks/results/train")
    parser.add_argument("--no-shared-work", action="store_true")
    parser.add_argument("--crops", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the data and work folders")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    _write_cases(folder, max(args.sizes), tuple(args.shape), seed=1)
    print(f"wrote {max(args.sizes)} phantom cases in {time.perf_counter() - start:.0f} s",
          flush=True)  # fmt: skip
    results = []
    for n in sorted(args.sizes):
        work = folder / ("work" if not args.no_shared_work else f"work{n}")
        res = _run(_subset(folder, n), work, folder / f"model{n}", args.epochs, args.preset)
        res["n_cases"] = n
        res["work_gb"] = round(_du(work) / 2**30, 3)
        results.append(res)
        print(json.dumps(res), flush=True)
    rows = [[r["n_cases"], r["peak_rss_gb"], r["work_gb"], r["wall_s"],
             *(r["stages_s"].get(k, 0.0) for k in ("cases", "forests", "candidates", "convnet", "refiner")),
             r["counts"].get("superpixels computed", 0)] for r in results]  # fmt: skip
    print(format_table(["N", "peak GB", "work GB", "wall s", "cases s", "forests s",
                        "candidates s", "convnet s", "refiner s", "new cases"], rows))  # fmt: skip
    summary = {"machine": machine_info(), "runs": results}
    if len(results) >= 2:
        n = np.array([r["n_cases"] for r in results], float)
        peak = np.array([r["peak_rss_gb"] for r in results])
        per_case_mb = float(np.polyfit(n, peak, 1)[0] * 1024)
        new = np.array([max(r["counts"].get("superpixels computed", 0), 1) for r in results])
        prep = np.array([r["stages_s"].get("cases", 0.0) for r in results]) / new
        rest = np.array([sum(v for k, v in r["stages_s"].items() if k != "cases") for r in results])
        rest_slope = float(np.polyfit(n, rest, 1)[0])
        disk_per_case = results[-1]["work_gb"] / results[-1]["n_cases"]
        slopes = {
            "peak_rss_mb_per_case": round(per_case_mb, 1),
            "prepare_s_per_case": round(float(np.median(prep)), 1),
            "other_stages_s_per_case": round(rest_slope, 1),
            "work_gb_per_case": round(disk_per_case, 3),
        }
        for target in (60, 281):
            slopes[f"extrapolated_{target}"] = {
                "peak_rss_gb": round(float(peak[-1] + (target - n[-1]) * per_case_mb / 1024), 2),
                "hours": round((target * slopes["prepare_s_per_case"] + rest[-1] + (target - n[-1]) * rest_slope) / 3600, 2),
                "work_gb": round(target * disk_per_case, 1),
            }  # fmt: skip
        summary["slopes"] = slopes
        print(json.dumps(slopes, indent=1))
    if args.crops:
        summary["crops"] = _crop_throughput(folder / ("work" if not args.no_shared_work else f"work{max(args.sizes)}"))
        print(json.dumps(summary["crops"]))
    write_json(args.json, summary)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
