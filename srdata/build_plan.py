"""What `srdata build` decides, before any pixel is made: the facts about each source (`Probe`), the
sizes it becomes (`plan_geometry`), why it is rejected (`rejection`), the output keys of its files
(`output_keys`), and over all sources (`make_plan`): which are duplicates, their ids (file names)
and splits, and each one's drawn degradation record. Pure functions of the probes and the options:
srdata.build reads, makes and writes around them."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srdata.build_options import BuildOptions
from srdata.dedup import find_groups
from srdata.degradations.pipeline import Record
from srdata.imageio import RejectedImage, check_pixels
from srdata.layout import FrameOrigin, flat_name, output_paths
from srdata.split import assign_splits

LR_MIN_SIDE = 32
# Bump when the bytes made for unchanged settings change, so old outputs are remade.
# 2: PNGs encoded with the fast filter (imageio.encode_png fast=True); whole 8-bit RGB PNG sources
# reused as HR (imageio.png_as_output).
OUTPUT_KEY_VERSION = 2

# ---------------------------------------------------------------------------------------------
# What one source is (cached in the manifests) and what it becomes


@dataclass
class Probe:
    """Facts about one source file that do not depend on the options."""

    source: str
    bytes: int
    mtime_ns: int
    sha256: str | None = None
    size: tuple[int, int] | None = None  # after EXIF orientation; header size if not decoded
    phash: int | None = None
    error: str | None = None  # a rejection no option can change (corrupt, not an image, ...)


@dataclass(frozen=True)
class Geometry:
    resized: tuple[int, int] | None  # HR resize target, None = no resize
    hr: tuple[int, int]
    lr: tuple[int, int]

    def crop(self) -> list[int]:
        """Kept box [left, top, right, bottom] of the (resized) source."""
        return [0, 0, self.hr[0], self.hr[1]]


def plan_geometry(size: tuple[int, int], opts: BuildOptions) -> Geometry:
    width, height = size
    target = (width, height)
    if opts.hr_size is not None:
        target = tuple(opts.hr_size)
    elif opts.hr_max_side is not None and max(width, height) > opts.hr_max_side:
        longest = max(width, height)
        target = tuple(max(1, (2 * side * opts.hr_max_side + longest) // (2 * longest)) for side in size)
    s = opts.scale
    hr = (target[0] - target[0] % s, target[1] - target[1] % s)
    resized = target if target != (width, height) else None
    return Geometry(resized, hr, (hr[0] // s, hr[1] // s))


def rejection(probe: Probe, opts: BuildOptions) -> str | None:
    """Why this source is not used under these options, or None."""
    if probe.error:
        return probe.error
    try:
        check_pixels(probe.size, opts.max_pixels)
    except RejectedImage as exc:
        return str(exc)
    lr = plan_geometry(probe.size, opts).lr
    if min(lr) < LR_MIN_SIDE:
        return f"too small (LR would be {lr[0]}x{lr[1]}; both sides must be >= {LR_MIN_SIDE} px)"
    return None


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def output_keys(probe: Probe, opts: BuildOptions, record: Record) -> tuple[str, str]:
    """(HR key, LR key): hashes of the content and of every setting that affects each file.

    `record` is the source's LR record (`opts.draw(probe.sha256)`)."""
    geo = plan_geometry(probe.size, opts)
    resize_filter = opts.hr_resize if geo.resized else None
    hr_key = _key("hr", OUTPUT_KEY_VERSION, probe.sha256, geo.resized, resize_filter, geo.hr, opts.png_level)
    # The drawn record, not the pipeline file: editing a pipeline remakes only the LRs it draws anew.
    lr_key = _key("lr", OUTPUT_KEY_VERSION, hr_key, record.pixels_key(), opts.png_level)
    return hr_key, lr_key


# ---------------------------------------------------------------------------------------------
# Decisions over all sources


@dataclass
class Plan:
    """Decisions for every source, in source order."""

    accepted: list[Probe]
    rejected: list[tuple[Probe, str]]
    ids: dict[str, str]  # source -> id (file stem)
    keeper: dict[str, str]  # source -> source of its group's kept image
    split: dict[str, str]  # kept source -> split
    split_group: dict[str, str]  # kept frame of a video -> the video or scene it goes to a split with
    distance: dict[str, int]  # dropped source -> Hamming distance to its kept image
    threshold: int | None
    records: dict[str, Record]  # kept source -> its LR record (drawn once per run here)

    def kept(self) -> list[Probe]:
        return [p for p in self.accepted if self.keeper[p.source] == p.source]

    def wanted_outputs(self, opts: BuildOptions) -> list[tuple[str, str, str]]:
        """(path relative to DS, output key, source) of every output file."""
        wanted = []
        for probe in self.kept():
            hr_key, lr_key = output_keys(probe, opts, self.records[probe.source])
            hr, lr = self.output_paths(probe.source, opts.scale)
            wanted += [(hr, hr_key, probe.source), (lr, lr_key, probe.source)]
        return wanted

    def output_paths(self, source: str, scale: int) -> tuple[str, str]:
        return output_paths(self.split[source], self.ids[source], scale)


def make_plan(sources, probes: dict[str, Probe], opts: BuildOptions, origins: dict[str, FrameOrigin],
          unusable=()) -> Plan:
    """Decide everything from the probes; `unusable` (path, reason) entries of the source tree are
    rejected too (in path order with the rest)."""
    accepted, rejected = [], [(Probe(rel, 0, 0, error=reason), reason) for rel, reason in unusable]
    for rel, _, _ in sources:
        probe = probes[rel]
        reason = rejection(probe, opts)
        if reason is None:
            accepted.append(probe)
        else:
            rejected.append((probe, reason))
    rejected.sort(key=lambda item: Path(item[0].source).parts)
    keeper, distance = _deduplicate(accepted, opts)
    ids = assign_ids([p.source for p in accepted])
    kept = [p for p in accepted if keeper[p.source] == p.source]
    split_group = {p.source: _split_group(origins[p.source], opts.group_by) for p in kept if p.source in origins}
    splits = assign_splits([(split_group.get(p.source, p.sha256), p.source) for p in kept], opts.val, opts.test, opts.seed)
    split = {p.source: s for p, s in zip(kept, splits)}
    records = {p.source: opts.draw(p.sha256) for p in kept}
    return Plan(accepted, rejected, ids, keeper, split, split_group, distance,
                 opts.dedup_threshold if opts.dedup else None, records)


def _split_group(origin: FrameOrigin, group_by: str) -> str:
    """The key a frame is split with: its video, or its scene (other images: their content)."""
    return f"video:{origin.video}" if group_by == "video" else f"scene:{origin.video}#{origin.scene}"


def _deduplicate(accepted: list[Probe], opts: BuildOptions) -> tuple[dict[str, str], dict[str, int]]:
    """Keeper per source: per pHash group the most pixels, then the shortest path, then the first."""
    if not opts.dedup or not accepted:
        return {p.source: p.source for p in accepted}, {}
    hashes = np.array([p.phash for p in accepted], dtype=np.uint64)
    labels = find_groups(hashes, opts.dedup_threshold)
    groups: dict[int, list[Probe]] = {}
    for probe, label in zip(accepted, labels):
        groups.setdefault(int(label), []).append(probe)
    keeper, distance = {}, {}
    for members in groups.values():
        best = min(members, key=lambda p: (-p.size[0] * p.size[1], len(p.source), p.source))
        for probe in members:
            keeper[probe.source] = best.source
            if probe is not best:
                distance[probe.source] = bin(probe.phash ^ best.phash).count("1")
    return keeper, distance


# Longest id in bytes: with ".png" it must fit a file name (255 bytes on most file systems).
MAX_ID_BYTES = 200


def assign_ids(rels: list[str]) -> dict[str, str]:
    """Unique ids from flattened paths; names that collide (ignoring case, as macOS and Windows
    do) all get a suffix from their own path, so an id never depends on the order of sources.
    A flattened name too long for a file name (deep folders, long names) is cut and given the
    same kind of suffix."""
    names = {rel: _fit_name(flat_name(rel), rel) for rel in rels}
    counts = Counter(name.casefold() for name in names.values())
    ids = {}
    for rel in rels:
        name = names[rel]
        if counts[name.casefold()] > 1:
            name = f"{name}-{_path_hash(rel)}"
        ids[rel] = name
    return ids


def _path_hash(rel: str) -> str:
    return hashlib.sha1(os.fsencode(rel)).hexdigest()[:8]  # fsencode: names that are not UTF-8 too


def _fit_name(name: str, rel: str) -> str:
    if len(os.fsencode(name)) <= MAX_ID_BYTES:
        return name
    kept, size = [], 0
    for char in name:
        size += len(os.fsencode(char))
        if size > MAX_ID_BYTES - 20:
            break
        kept.append(char)
    return f"{''.join(kept)}-{_path_hash(rel)}"
