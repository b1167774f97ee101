"""Speed of one `sr-train fit` iteration on this machine, as ratios measured in the same run.

    .venv/bin/python bench/train.py [--iters 8] [--data DS] [--paddlegan DIR --paddlegan-python PY]

The model is PaddleGAN's esrgan_psnr_x4_div2k.yaml shrunk to RRDBNet nf 32, nb 2 (L1, Adam,
batch 16, HR patch 128), trained by `sr-train fit` on a dataset built from data/samples (or
--data). Printed, each as seconds per iteration (median over the iterations after the first two,
which warm up Paddle's allocator):

- srkit with 1 process x 1 thread, 1 process x 2 threads, 2 processes x 1 thread, and the
  default (what `sr-train fit` picks here without train.processes/train.threads), each the wall
  time of rank 0 from one iteration to the next (metrics.jsonl's it_per_s with log.interval 1);
- the kernel-only step: the same forward, loss, backward and Adam step on one fixed batch, in one
  thread, with no loader and no logging; srkit's 1 x 1 iteration divided by it is the overhead of
  everything else (goal <= 1.05);
- with --paddlegan DIR (a PaddleGAN checkout) and --paddlegan-python (a Python with Paddle and
  PaddleGAN's requirements): PaddleGAN's own trainer (tools/main.py) on the same config, data and
  thread count (OMP_NUM_THREADS=1, its best setting here), and srkit's default divided by it
  (goal <= 0.6).

Runs are interleaved (--rounds) and the best round is kept, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sr_train.launch import fit_processes  # noqa: E402
from sr_train.recipe import recipe_from_dict  # noqa: E402
from srdata.build import build_dataset  # noqa: E402
from srdata.build_options import BuildOptions  # noqa: E402
from srdata.jsonio import read_jsonl  # noqa: E402

WARMUP = 2
SETTINGS = {"1 process x 1 thread": (1, 1), "1 process x 2 threads": (1, 2), "2 processes x 1 thread": (2, 1)}


def recipe(data: Path, run_dir: Path, iters: int, processes: int, threads: int) -> dict:
    """esrgan-psnr-x4's values (PaddleGAN's esrgan_psnr_x4_div2k.yaml) with RRDBNet nf 32, nb 2."""
    raw = yaml.safe_load((ROOT / "recipes" / "esrgan-psnr-x4.yaml").read_text())
    raw.update(run_dir=str(run_dir), data={"root": str(data), "workers": 0})
    raw["model"].update(nf=32, nb=2)
    raw["train"].update(iters=iters, processes=processes, threads=threads)
    raw["val"].update(interval=10**9)
    raw["checkpoint"].update(interval=10**9)
    raw["log"] = {"interval": 1, "visualdl": False}
    return raw


def srkit_seconds(data: Path, work: Path, iters: int, processes: int, threads: int) -> float:
    """Median s/iteration of `sr-train fit`: rank 0's wall time from one logged iteration to the next
    (loader, step, logging: everything), after the warm-up."""
    run_dir = work / f"run-{processes}x{threads}"
    shutil.rmtree(run_dir, ignore_errors=True)
    path = work / f"recipe-{processes}x{threads}.yaml"
    path.write_text(yaml.safe_dump(recipe(data, run_dir, iters, processes, threads)))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-m", "sr_train.cli", "fit", str(path), "--no-progress"], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"sr-train fit ({processes} x {threads}) failed:\n{done.stderr[-3000:]}")
    rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "it_per_s" in r]
    return statistics.median(1 / r["it_per_s"] for r in rows[WARMUP:])


KERNEL_ONLY = """
import statistics, sys, time
import numpy as np, paddle, paddle.nn.functional as F
from sr_train.models import build_model, init_weights
paddle.base.core.set_num_threads(1)
model = build_model({"arch": "rrdbnet", "nf": 32, "nb": 2, "gc": 32, "scale": 4})
init_weights(model, 0)
opt = paddle.optimizer.Adam(learning_rate=2e-4, beta1=0.9, beta2=0.99, parameters=model.parameters())
rng = np.random.default_rng(0)
lq = paddle.to_tensor(rng.random((16, 3, 32, 32), dtype=np.float32))
gt = paddle.to_tensor(rng.random((16, 3, 128, 128), dtype=np.float32))
times = []
for _ in range(int(sys.argv[1])):
    start = time.perf_counter()
    loss = F.l1_loss(model(lq), gt)
    loss.backward()
    opt.step()
    opt.clear_grad()
    float(loss)
    times.append(time.perf_counter() - start)
print(statistics.median(times[2:]))
"""


def kernel_seconds(iters: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOG_minloglevel": "2"}
    done = subprocess.run([sys.executable, "-c", KERNEL_ONLY, str(iters)], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def paddlegan_seconds(checkout: Path, python: str, data: Path, work: Path, iters: int) -> float:
    """Median batch_cost of PaddleGAN's trainer on the same config (its own log lines)."""
    raw = paddlegan_config(data, work / "paddlegan-output", iters)
    path = work / "esrgan_psnr_x4_small.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOG_minloglevel": "2", "PYTHONPATH": str(checkout)}
    done = subprocess.run([python, "tools/main.py", "--config-file", str(path)], cwd=checkout, env=env,
                          capture_output=True, text=True)
    costs = [float(x) for x in re.findall(r"batch_cost: ([0-9.]+) sec", done.stdout + done.stderr)]
    if len(costs) <= WARMUP:
        raise SystemExit(f"PaddleGAN's trainer logged {len(costs)} iterations:\n{(done.stdout + done.stderr)[-3000:]}")
    return statistics.median(costs[WARMUP:])


def paddlegan_config(data: Path, output: Path, iters: int) -> dict:
    """PaddleGAN's esrgan_psnr_x4_div2k.yaml with RRDBNet nf 32, nb 2, this dataset, no validation."""
    pipeline = [{"name": "SRPairedRandomCrop", "gt_patch_size": 128, "scale": 4, "keys": ["image", "image"]},
                {"name": "PairedRandomHorizontalFlip", "keys": ["image", "image"]},
                {"name": "PairedRandomVerticalFlip", "keys": ["image", "image"]},
                {"name": "PairedRandomTransposeHW", "keys": ["image", "image"]},
                {"name": "Transpose", "keys": ["image", "image"]},
                {"name": "Normalize", "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0], "keys": ["image", "image"]}]
    load = [{"name": "LoadImageFromFile", "key": "lq"}, {"name": "LoadImageFromFile", "key": "gt"}]
    split = {"name": "SRDataset", "gt_folder": str(data / "train"), "lq_folder": str(data / "train_X4"), "scale": 4}
    return {
        "total_iters": iters, "output_dir": str(output), "min_max": "(0., 1.)",
        "model": {"name": "BaseSRModel", "generator": {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 32, "nb": 2},
                  "pixel_criterion": {"name": "L1Loss"}},
        "dataset": {
            "train": {**split, "num_workers": 0, "batch_size": 16,
                      "preprocess": load + [{"name": "Transforms", "input_keys": ["lq", "gt"], "pipeline": pipeline}]},
            "test": {**split, "gt_folder": str(data / "val"), "lq_folder": str(data / "val_X4"),
                     "preprocess": load + [{"name": "Transforms", "input_keys": ["lq", "gt"],
                                            "pipeline": pipeline[-2:]}]},
        },
        "lr_scheduler": {"name": "CosineAnnealingRestartLR", "learning_rate": 2e-4, "periods": [250000] * 4,
                         "restart_weights": [1, 1, 1, 1], "eta_min": 1e-7},
        "optimizer": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
        "validate": {"interval": 10**9, "save_img": False},
        "log_config": {"interval": 1, "visiual_interval": 10**9},
        "snapshot_config": {"interval": 10**9},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=8, help="iterations per run (the first 2 are warm-up)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the best of each is kept")
    parser.add_argument("--data", type=Path, help="a dataset made by srdata build --scale 4 (default: built from --src)")
    parser.add_argument("--src", type=Path, default=ROOT / "data" / "samples",
                        help="images to build the dataset from (PaddleGAN's loader needs 16 or more training "
                             "images, e.g. /work/shared/data/cartoon-dev)")
    parser.add_argument("--paddlegan", type=Path, help="a PaddleGAN checkout, to run its trainer side by side")
    parser.add_argument("--paddlegan-python", default=sys.executable, help="the Python that runs PaddleGAN")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="srkit-bench-train-"))
    try:
        data = args.data
        if data is None:
            data = work / "ds"
            build_dataset(BuildOptions(src=args.src, out=data, scale=4, blur=1.2, val=1, test=0), progress=False)
        default = recipe_from_dict(recipe(data, work / "d", 1, 0, 0), "bench")
        default_processes = fit_processes(default)
        best: dict[str, float] = {}
        started = time.perf_counter()
        for _ in range(args.rounds):
            measured = {name: srkit_seconds(data, work, args.iters, p, t) for name, (p, t) in SETTINGS.items()}
            measured["kernel-only step (1 thread)"] = kernel_seconds(args.iters)
            if args.paddlegan:  # after srkit's runs, so a PaddleGAN set-up problem costs nothing else
                measured["PaddleGAN trainer (1 thread)"] = paddlegan_seconds(args.paddlegan, args.paddlegan_python,
                                                                              data, work, args.iters)
            for name, seconds in measured.items():
                best[name] = min(best.get(name, seconds), seconds)
        default_name = "1 process x 1 thread" if default_processes == 1 else f"{default_processes} processes x 1 thread"
        if default_name not in best:
            best[default_name] = srkit_seconds(data, work, args.iters, default_processes, 1)
        print(f"RRDBNet nf 32 nb 2, batch 16, HR patch 128, {args.iters} iterations per run "
              f"(median after {WARMUP}), best of {args.rounds} round(s), {time.perf_counter() - started:.0f} s")
        for name, seconds in best.items():
            print(f"  {name:32s} {seconds:7.3f} s/iter")
        one = best["1 process x 1 thread"]
        print(f"1 x 2 threads / 1 x 1:            {best['1 process x 2 threads'] / one:.2f}")
        print(f"2 processes x 1 / 1 x 1:          {best['2 processes x 1 thread'] / one:.2f}")
        print(f"srkit 1 x 1 / kernel-only step:   {one / best['kernel-only step (1 thread)']:.3f}  (goal <= 1.05)")
        print(f"srkit default here: {default_name}")
        if "PaddleGAN trainer (1 thread)" in best:
            ratio = best[default_name] / best["PaddleGAN trainer (1 thread)"]
            print(f"srkit default / PaddleGAN:        {ratio:.2f}  (goal <= 0.6)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
