"""Measure which pHash Hamming threshold separates near-duplicate variants from distinct images.

On the shared cartoon set, the `renpy_sylvie_*`, `renpy_eileen_*` and `renpy_lucy_*` files are
expression/outfit variants of one character each (labelled near-duplicates); every other image was
assumed distinct. Pairs whose decoded pixels are identical are duplicates whatever their names
(the set has four such copies), so they are counted as duplicates too. This prints the distance
distribution of both kinds of pairs, the closest "distinct" pairs (to look at), precision/recall
of "distance <= t" per threshold, and what `find_groups` (transitive) would merge at each t.
srdata.dedup.DEFAULT_THRESHOLD was chosen from this output.

    .venv/bin/python scripts/measure_dedup_threshold.py [FOLDER]
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from srdata.dedup import popcount, find_groups, phash_u64
from srdata.imageio import decode_source, find_images

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "cartoon-dev"
VARIANT_FAMILIES = ("renpy_sylvie_", "renpy_eileen_", "renpy_lucy_")


def family(name: str) -> str | None:
    return next((f for f in VARIANT_FAMILIES if name.startswith(f)), None)


def histogram(distances: np.ndarray) -> dict[int, int]:
    return {int(d): c for d, c in sorted(Counter(distances.tolist()).items())}


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else DEFAULT_FOLDER
    paths = find_images(folder)
    if not paths:
        print(f"no images in {folder}", file=sys.stderr)
        return 2
    images = [decode_source(p) for p in paths]  # decoded exactly as `srdata build` decodes sources
    hashes = np.array([phash_u64(im) for im in images], dtype=np.uint64)
    pixels = [hashlib.sha256(f"{im.shape}".encode() + im.tobytes()).hexdigest() for im in images]
    # A pixel-identical copy joins its original's family (or they form one of their own).
    fams = [family(p.name) or f"copy:{px}" for p, px in zip(paths, pixels)]

    i, j = np.triu_indices(len(paths), k=1)
    dist = popcount(hashes[i] ^ hashes[j]).astype(int)
    same = np.array([fams[a] == fams[b] for a, b in zip(i, j)])
    copies = sum(fams[a] == fams[b] and fams[a].startswith("copy:") for a, b in zip(i, j))
    print(
        f"{len(paths)} images, {same.sum()} duplicate pairs ({copies} pixel-identical copies,"
        f" the rest renpy variants), {(~same).sum()} distinct pairs"
    )
    print(f"duplicate pairs, distance: count  {histogram(dist[same])}")
    print(f"distinct pairs, distance <= 24: count  {histogram(dist[~same][dist[~same] <= 24])}")
    print("closest distinct pairs (distance, a, b):")
    for k in np.argsort(dist + same * 1000, kind="stable")[:10]:
        print(f"  {dist[k]:2d}  {paths[i[k]].name}  {paths[j[k]].name}")

    print("\n t  pairs: TP  FP  FN  precision recall | groups: merged-distinct-images  kept")
    for t in range(0, 21):
        pred = dist <= t
        tp, fp, fn = int((pred & same).sum()), int((pred & ~same).sum()), int((~pred & same).sum())
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn)
        labels = find_groups(hashes, t)
        # A distinct image wrongly dropped = it shares a group with any other image that is not
        # its own variant family.
        wrong = sum(
            1
            for k in range(len(paths))
            if any(
                labels[m] == labels[k] and fams[m] != fams[k]
                for m in range(len(paths))
            )
        )
        kept = len(np.unique(labels))
        print(
            f"{t:2d}  {tp:9d} {fp:3d} {fn:3d}  {precision:9.3f} {recall:6.3f} |"
            f" {wrong:27d} {kept:5d}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
