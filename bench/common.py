"""What the speed scripts under bench/ share: where the development images are, the source options of
the build benchmarks, and a timed build. (Each script puts the repository root on sys.path first.)"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from srdata.build import build_dataset
from srdata.build_options import BuildOptions

ROOT = Path(__file__).resolve().parents[1]
# The shared development set, ../shared from the repository root (DEVELOPERS.md); data/samples is the
# stand-in where it is missing (a clone elsewhere).
CARTOONS = ROOT.parent / "shared" / "data" / "cartoon-dev"
SAMPLES = ROOT / "data" / "samples"


def images_folder(src: Path) -> Path:
    """`src` when it is a folder, else the bundled samples."""
    return src if src.is_dir() else SAMPLES


def add_build_args(parser: argparse.ArgumentParser, repeat: int = 1) -> None:
    """--src, --scale and --repeat, as every build benchmark takes them."""
    parser.add_argument("--src", type=Path, default=CARTOONS, help="source images (default: the cartoon set)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=repeat, help="interleaved rounds; the best is kept")


def timed_build(opts: BuildOptions, executor=None, cpu=time.process_time) -> tuple[float, float]:
    """(wall, CPU) seconds of a build from scratch; `cpu` is the CPU clock to read (default: this process)."""
    shutil.rmtree(opts.out, ignore_errors=True)
    wall, started = time.perf_counter(), cpu()
    build_dataset(opts, progress=False, executor=executor)
    return time.perf_counter() - wall, cpu() - started
