"""Speed of srdata.dedup.find_groups on a million 64-bit hashes, against baselines timed in the
same run: `np.sort` of the same array (the floor: any exact grouping at least sorts) and a vectorised
all-pairs search on a subset, extrapolated to n (what "never compare all pairs" avoids). Ratios
use CPU seconds of this process, which stay meaningful when other jobs share the machine.

Two inputs: uniformly random hashes (few neighbours; the cost is the multi-index search itself)
and a clustered set shaped like a scraped collection (exact copies, small groups of variants,
a few groups of tens of thousands of near-duplicates). Exits 1 if a result is wrong (checked
against the all-pairs search on a subset) or the target time is missed.

    .venv/bin/python bench/dedup.py [--n 1000000] [--threshold T ...] [--target 60]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from srdata.dedup import DEFAULT_THRESHOLD, popcount, find_groups


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, np.iinfo(np.uint64).max, size=n, dtype=np.uint64, endpoint=True)


def near_copies(rng: np.random.Generator, centres: np.ndarray, max_flips: int) -> np.ndarray:
    """Each centre with 0..max_flips random bits flipped."""
    out = centres.copy()
    flips = rng.integers(0, max_flips + 1, centres.size)
    for k in range(max_flips):
        bit = rng.integers(0, 64, centres.size).astype(np.uint64)
        out ^= np.where(flips > k, np.left_shift(np.uint64(1), bit), np.uint64(0))
    return out


def clustered_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    """40% unrelated images, 10% exact copies, 50% in near-duplicate groups whose sizes follow a
    Zipf law (most groups of 2-5, a few of tens of thousands), members up to 3 bits from the
    group's centre (so up to 6 bits apart: chains at low thresholds, cliques at high ones)."""
    n_clustered = n // 2
    sizes = np.minimum(rng.zipf(1.6, size=n_clustered), 50_000)
    sizes = sizes[np.cumsum(sizes) <= n_clustered]
    centres = np.repeat(random_hashes(rng, sizes.size), sizes)
    members = near_copies(rng, centres, 3)
    rest = random_hashes(rng, n - members.size - n // 10)
    pool = np.concatenate([members, rest])
    copies = pool[rng.integers(0, pool.size, n - pool.size)]
    h = np.concatenate([pool, copies])
    rng.shuffle(h)
    return h


def all_pairs_groups_seconds(h: np.ndarray, t: int) -> tuple[np.ndarray, float]:
    """Brute-force baseline: every pair's distance, row block by row block, then components.
    Returns the labels and the CPU seconds of the distance part."""
    t0 = time.process_time()
    n = h.size
    label = np.arange(n)
    edges_i, edges_j = [], []
    for s in range(0, n, 256):
        d = popcount(h[s : s + 256, None] ^ h[None, :])
        i, j = np.nonzero(d <= t)
        edges_i.append(i + s)
        edges_j.append(j)
    i, j = np.concatenate(edges_i), np.concatenate(edges_j)
    seconds = time.process_time() - t0
    while True:  # min-label propagation = connected components (not part of the timing)
        new = label.copy()
        np.minimum.at(new, i, label[j])
        if np.array_equal(new, label):
            return label, seconds
        label = new


def timed(fn, *args):
    """Result, wall seconds and CPU seconds of this process (the machine may be shared: CPU
    time shows the cost when other jobs slow the wall clock down)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--threshold", type=int, nargs="+", default=[DEFAULT_THRESHOLD])
    ap.add_argument("--target", type=float, default=60.0, help="seconds allowed per run")
    ap.add_argument("--check", type=int, default=4000, help="subset size checked by brute force")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    inputs = {"random": random_hashes(rng, args.n), "clustered": clustered_hashes(rng, args.n)}
    ok = True
    print(f"n={args.n:,}; the machine may be shared with other jobs, so times are indicative")
    print(f"{'input':10} {'t':>3} {'find_groups s':>14} {'(cpu s)':>8} {'np.sort s':>12}"
          f" {'ratio':>6} {'all-pairs s (extrap.)':>22} {'speed-up':>9} {'groups':>9}")
    for name, h in inputs.items():
        _, floor, floor_cpu = timed(np.sort, h)
        for t in args.threshold:
            labels, seconds, cpu = timed(find_groups, h, t)
            sub = h[: args.check]
            ref, brute = all_pairs_groups_seconds(sub, t)
            brute_full = brute * (args.n / sub.size) ** 2
            if not np.array_equal(find_groups(sub, t), ref):
                print(f"WRONG: {name} t={t} differs from the all-pairs search", file=sys.stderr)
                ok = False
            if seconds > args.target:
                print(f"SLOW: {name} t={t} took {seconds:.1f} s > {args.target} s", file=sys.stderr)
                ok = False
            print(f"{name:10} {t:3d} {seconds:14.2f} {cpu:8.2f} {floor:12.2f}"
                  f" {cpu / floor_cpu:6.1f} {brute_full:22.0f} {brute_full / cpu:9.0f}"
                  f" {len(np.unique(labels)):9,d}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
