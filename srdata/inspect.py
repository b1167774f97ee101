"""Look at a paired HR/LR dataset before training on it: stats, problems, bicubic baseline.

Works on any dataset `srdata.layout` resolves: one written by `srdata build` (with its dataset.json
and manifest.jsonl), a PaddleGAN/BasicSR-style paired folder, or two folders given directly.

Speed: sizes, formats and modes come from image headers. Pixels are decoded once per file, in
parallel (local processes or a Dask cluster: srdata.executor), only because the checks need
them: sha256 of pixels (exact duplicates), pHash (near duplicates across splits), the grey-level
spread (near-constant images), the bicubic baseline (PSNR/SSIM) and, for srdata-built datasets,
the manifest check.

manifest_mismatch compares each file with DS/manifest.jsonl: listed but missing, present but
not listed, header size != recorded hr_size/lr_size, bytes != a recorded per-output
`hr_sha256`/`lr_sha256` (when the manifest has them), and -- because the manifest's `sha256`
is the SOURCE's -- the LR on disk != the recorded `degradation` re-applied to the HR on disk
(bit-exact for an untouched build, so any later pixel edit of either file shows).
"""

from __future__ import annotations

import hashlib
import io
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
from PIL import Image

from srdata.dedup import DEFAULT_THRESHOLD, find_groups, phash_u64
from srdata.degradations.pipeline import Record
from srdata.errors import UserError
from srdata.executor import Executor, LocalExecutor, SharedFile
from srdata.imageio import decode_dataset_rgb
from srdata.layout import MANIFEST, FilePair, Layout, SplitDirs, list_pairs, ordered_splits, read_manifest
from srdata.metrics import SSIM_MARGIN, bicubic_baseline, mean_score
from srdata.quality import NEAR_CONSTANT_LEVELS, NEAR_CONSTANT_RULE, grey_spread, is_near_constant
from srdata.sheet import SheetPair, choose_rows

PROBLEM_KINDS = (
    "missing_pair",
    "scale_mismatch",
    "unreadable",
    "cross_split_duplicate",
    "exact_duplicate",
    "near_constant",
    "manifest_mismatch",
)

BASELINE_NOTE = (
    "bicubic baseline: LR upscaled to the HR size with OpenCV INTER_CUBIC, PSNR/SSIM on the Y channel "
    "(BT.601), {scale} px border cropped, mean over pairs (the SR benchmarks' convention)"
)


# ----------------------------------------------------------------------------- report types


@dataclass(frozen=True)
class Problem:
    """One thing that would hurt training; `files` are paths as shown to the user."""

    kind: str
    files: list[str]
    detail: str


@dataclass(frozen=True)
class SizeSummary:
    """Smallest, median and largest image by pixel count, as (width, height)."""

    min: tuple[int, int]
    median: tuple[int, int]
    max: tuple[int, int]

    @staticmethod
    def of(sizes: list[tuple[int, int]]) -> "SizeSummary | None":
        if not sizes:
            return None
        ordered = sorted(sizes, key=lambda wh: (wh[0] * wh[1], wh))
        return SizeSummary(ordered[0], ordered[(len(ordered) - 1) // 2], ordered[-1])


@dataclass
class SplitStats:
    name: str
    hr_dir: str
    lr_dir: str
    pairs: int
    hr_files: int
    lr_files: int
    hr_megapixels: float
    lr_megapixels: float
    hr_size: SizeSummary | None
    lr_size: SizeSummary | None
    formats: dict[str, int]
    modes: dict[str, int]
    baseline_pairs: int
    bicubic_psnr_y: float
    bicubic_ssim_y: float


@dataclass
class InspectReport:
    root: str
    layout: str  # "srdata" (built by srdata build), "paired-folders" or "hr-lr"
    scale: int
    scale_source: str
    dedup_threshold: int
    splits: list[SplitStats]
    problems: list[Problem]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def problem_counts(self) -> dict[str, int]:
        counts = Counter(p.kind for p in self.problems)
        return {kind: counts[kind] for kind in PROBLEM_KINDS if counts[kind]}

    def to_json(self) -> dict:
        """Plain data for --json (written by srdata.atomic.write_json: non-finite scores become null)."""
        return asdict(self)


# ----------------------------------------------------------------------------- settings


def dedup_threshold_of(settings: dict) -> int:
    """The Hamming threshold the build used (dataset.json "settings"), else the default.

    So inspect's cross-split duplicate check agrees with what the build deduplicated.
    """
    value = settings.get("dedup_threshold")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return DEFAULT_THRESHOLD


# ----------------------------------------------------------------------------- files and pairs


@dataclass(frozen=True)
class PairJob(FilePair):
    """One unit of parallel work: a file pair, with the manifest's record of its degradation."""

    degradation: dict | None = None  # the manifest's record for this pair, when built by srdata


def pair_jobs(split: SplitDirs, scale: int) -> list[PairJob]:
    """The split's file pairs (`srdata.layout.list_pairs`) as jobs."""
    return [PairJob(p.split, p.key, p.hr, p.lr) for p in list_pairs(split, scale)]


# ----------------------------------------------------------------------------- per-file facts


@dataclass
class FileFacts:
    """What one file tells: header facts, byte and pixel hashes, or why it could not be read."""

    size: tuple[int, int] | None = None
    format: str | None = None
    mode: str | None = None
    bytes_sha256: str | None = None
    pixels_sha256: str | None = None
    phash: int | None = None
    grey_spread: int | None = None
    error: str | None = None


@dataclass
class PairFacts:
    hr: FileFacts | None
    lr: FileFacts | None
    psnr_y: float | None = None
    ssim_y: float | None = None
    # LR pixels that differ from the manifest's recorded degradation re-applied to the HR
    # (None: not checked), and the largest difference in grey levels.
    lr_pixels_off: int | None = None
    lr_max_diff: int | None = None


def examine_pair(job: PairJob, scale: int) -> PairFacts:
    """Read each file once; measure what the checks need. Runs in an executor's worker."""
    hr_facts, hr_img = _examine_file(job.hr, want_phash=True) if job.hr else (None, None)
    lr_facts, lr_img = _examine_file(job.lr, want_phash=False) if job.lr else (None, None)
    facts = PairFacts(hr_facts, lr_facts)
    if hr_img is not None and lr_img is not None and _scales_match(hr_img.shape, lr_img.shape, scale):
        if min(hr_img.shape[:2]) - 2 * scale > 2 * SSIM_MARGIN:  # else too small to score
            facts.psnr_y, facts.ssim_y = bicubic_baseline(hr_img, lr_img, crop_border=scale, y_channel=True)
        if job.degradation is not None:
            facts.lr_pixels_off, facts.lr_max_diff = _redegrade_difference(hr_img, lr_img, job.degradation)
    return facts


def _redegrade_difference(hr: np.ndarray, lr: np.ndarray, recorded: dict) -> tuple[int, int] | tuple[None, None]:
    """Re-apply the manifest's recorded degradation to the HR and compare with the LR on disk.

    `srdata build` makes the LR from exactly this HR (lossless PNG) with the recorded steps and
    values (`srdata.degradations.pipeline.Record`), so the two are bit-identical unless one of the
    files was changed afterwards. The manifest keeps only the SOURCE's sha256, so this is how
    inspect sees changed pixels without the source.
    """
    try:
        record = Record.from_json(recorded)
        expected = record.apply(np.ascontiguousarray(hr[:, :, ::-1]))  # records apply in BGR
    except (KeyError, TypeError, ValueError):
        return None, None  # a record this srkit cannot apply: nothing reliable to compare
    if expected.shape != lr.shape:
        return None, None
    diff = cv2.absdiff(expected[:, :, ::-1], lr).max(axis=2)
    return int(np.count_nonzero(diff)), int(diff.max())


def _scales_match(hr_shape, lr_shape, scale: int) -> bool:
    return hr_shape[0] == lr_shape[0] * scale and hr_shape[1] == lr_shape[1] * scale


def _examine_file(path: Path, want_phash: bool) -> tuple[FileFacts, np.ndarray | None]:
    facts = FileFacts()
    try:
        data = path.read_bytes()
    except OSError as exc:
        facts.error = f"cannot read: {exc.strerror or exc}"
        return facts, None
    facts.bytes_sha256 = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as header:  # header only: no pixel decoding here
            facts.size, facts.format, facts.mode = header.size, header.format, header.mode
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files
        facts.error = f"not an image Pillow can open ({type(exc).__name__})"
        return facts, None
    img = decode_dataset_rgb(data)
    if img is None or (img.shape[1], img.shape[0]) != facts.size:
        facts.error = "pixels cannot be decoded (truncated or corrupt)"
        return facts, None
    facts.pixels_sha256 = hashlib.sha256(f"{img.shape}".encode() + img.tobytes()).hexdigest()
    facts.grey_spread = grey_spread(img)
    if want_phash:
        facts.phash = phash_u64(img)
    return facts, img


# ----------------------------------------------------------------------------- the scan


@dataclass
class Scan:
    """The layout, every job and its facts: what the report and the contact sheet are made from."""

    layout: Layout
    jobs: list[PairJob]
    facts: list[PairFacts]
    manifest: list[dict] | None = None

    def show(self, path: Path) -> str:
        if self.layout.root is not None:
            return path.relative_to(self.layout.root).as_posix()
        return path.as_posix()


def scan_dataset(
    layout: Layout,
    executor: Executor | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Scan:
    """Examine every pair on the executor (default: in this process); results in job order."""
    records = read_manifest(layout.root) if layout.root is not None else None
    jobs = [job for split in layout.splits for job in pair_jobs(split, layout.scale)]
    jobs = _with_degradations(jobs, records, layout)
    if not jobs:
        where = ", ".join(f"{s.hr}/ and {s.lr}/" for s in layout.splits)
        raise UserError(f"no image files found in {where}: point inspect at a folder with HR/LR images")
    work = [replace(job, hr=job.hr and job.hr.absolute(), lr=job.lr and job.lr.absolute())
            for job in jobs]  # paths that mean the same in a worker's own working folder
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(done, len(jobs))

    facts = (executor or LocalExecutor(1)).map(examine_pair, work, (layout.scale,), _dataset_file(work),
                                               on_done=advance, name_of=lambda job: str(job.hr or job.lr))
    return Scan(layout, jobs, facts, records)


def _dataset_file(jobs: list[PairJob]) -> list[SharedFile]:
    """A file of the dataset that cluster workers must see as this process does (none if no file
    can be stat'ed: then every pair is unreadable anyway)."""
    for path in (p for job in jobs for p in (job.hr, job.lr) if p is not None):
        try:
            return [SharedFile(f"the dataset folder {path.parent}", str(path), path.stat().st_size)]
        except OSError:
            continue
    return []


def _with_degradations(jobs: list[PairJob], records: list[dict] | None, layout: Layout) -> list[PairJob]:
    """Attach each pair's recorded degradation (matched by its HR and LR paths) to its job."""
    if not records:
        return jobs
    by_pair = {
        (r.get("hr"), r.get("lr")): r["degradation"] for r in records if isinstance(r.get("degradation"), dict)
    }
    out = []
    for job in jobs:
        if job.hr is not None and job.lr is not None:
            key = (job.hr.relative_to(layout.root).as_posix(), job.lr.relative_to(layout.root).as_posix())
            job = replace(job, degradation=by_pair.get(key))
        out.append(job)
    return out


def inspect_layout(
    layout: Layout, executor: Executor | None = None, on_progress: Callable[[int, int], None] | None = None
) -> tuple[InspectReport, Scan]:
    start = time.perf_counter()
    scan = scan_dataset(layout, executor, on_progress)
    report = build_report(scan)
    report.seconds = time.perf_counter() - start
    return report, scan


def build_report(scan: Scan) -> InspectReport:
    layout = scan.layout
    threshold = dedup_threshold_of(layout.settings)
    problems = (
        _missing_pairs(scan)
        + _unreadable(scan)
        + _scale_mismatches(scan)
        + _near_constant(scan)
        + _exact_duplicates(scan)
        + _cross_split_duplicates(scan, threshold)
        + _manifest_mismatches(scan)
    )
    root = layout.root.as_posix() if layout.root else f"{layout.splits[0].hr} + {layout.splits[0].lr}"
    return InspectReport(
        root=root,
        layout=layout.kind,
        scale=layout.scale,
        scale_source=layout.scale_source,
        dedup_threshold=threshold,
        splits=[_split_stats(scan, split) for split in layout.splits],
        problems=problems,
        notes=[BASELINE_NOTE.format(scale=layout.scale), NEAR_CONSTANT_RULE],
    )


def _split_stats(scan: Scan, split: SplitDirs) -> SplitStats:
    rows = [(j, f) for j, f in zip(scan.jobs, scan.facts) if j.split == split.name]
    hr = [f.hr for _, f in rows if f.hr is not None and f.hr.size is not None]
    lr = [f.lr for _, f in rows if f.lr is not None and f.lr.size is not None]
    scored = [f for _, f in rows if f.psnr_y is not None]
    headers = hr + lr
    return SplitStats(
        name=split.name,
        hr_dir=scan.show(split.hr),
        lr_dir=scan.show(split.lr),
        pairs=sum(1 for j, _ in rows if j.hr is not None and j.lr is not None),
        hr_files=sum(1 for j, _ in rows if j.hr is not None),
        lr_files=sum(1 for j, _ in rows if j.lr is not None),
        hr_megapixels=round(sum(w * h for w, h in (f.size for f in hr)) / 1e6, 3),
        lr_megapixels=round(sum(w * h for w, h in (f.size for f in lr)) / 1e6, 3),
        hr_size=SizeSummary.of([f.size for f in hr]),
        lr_size=SizeSummary.of([f.size for f in lr]),
        formats=dict(sorted(Counter(f.format for f in headers).items())),
        modes=dict(sorted(Counter(f.mode for f in headers).items())),
        baseline_pairs=len(scored),
        bicubic_psnr_y=mean_score(f.psnr_y for f in scored),
        bicubic_ssim_y=mean_score(f.ssim_y for f in scored),
    )


# ----------------------------------------------------------------------------- problem finders


def _missing_pairs(scan: Scan) -> list[Problem]:
    out = []
    for job in scan.jobs:
        split = next(s for s in scan.layout.splits if s.name == job.split)
        if job.lr is None:
            out.append(Problem("missing_pair", [scan.show(job.hr)], f"HR has no LR partner in {scan.show(split.lr)}/"))
        elif job.hr is None:
            out.append(Problem("missing_pair", [scan.show(job.lr)], f"LR has no HR partner in {scan.show(split.hr)}/"))
    return out


def _unreadable(scan: Scan) -> list[Problem]:
    out = []
    for job, facts in zip(scan.jobs, scan.facts):
        for path, f in ((job.hr, facts.hr), (job.lr, facts.lr)):
            if f is not None and f.error is not None:
                out.append(Problem("unreadable", [scan.show(path)], f.error))
    return out


def _scale_mismatches(scan: Scan) -> list[Problem]:
    out, scale = [], scan.layout.scale
    for job, facts in zip(scan.jobs, scan.facts):
        if facts.hr is None or facts.lr is None or facts.hr.size is None or facts.lr.size is None:
            continue
        (hw, hh), (lw, lh) = facts.hr.size, facts.lr.size
        if (hw, hh) != (lw * scale, lh * scale):
            out.append(
                Problem(
                    "scale_mismatch",
                    [scan.show(job.hr), scan.show(job.lr)],
                    f"HR {hw}x{hh} is not {scale} x LR {lw}x{lh} (= {lw * scale}x{lh * scale})",
                )
            )
    return out


def _near_constant(scan: Scan) -> list[Problem]:
    out = []
    for job, facts in zip(scan.jobs, scan.facts):
        f = facts.hr
        if f is not None and f.grey_spread is not None and is_near_constant(f.grey_spread):
            out.append(
                Problem(
                    "near_constant",
                    [scan.show(job.hr)],
                    f"99% of its pixels span {f.grey_spread} grey levels (< {NEAR_CONSTANT_LEVELS}): almost no detail",
                )
            )
    return out


def _hr_entries(scan: Scan) -> Iterator[tuple[PairJob, FileFacts]]:
    for job, facts in zip(scan.jobs, scan.facts):
        if job.hr is not None and facts.hr is not None and facts.hr.error is None:
            yield job, facts.hr


def _exact_duplicates(scan: Scan) -> list[Problem]:
    by_digest: dict[str, list[PairJob]] = defaultdict(list)
    for job, f in _hr_entries(scan):
        by_digest[f.pixels_sha256].append(job)
    return [
        _group_problem(scan, "exact_duplicate", members, f"{len(members)} HR images with identical pixels (sha256 {digest[:12]})")
        for digest, members in by_digest.items()
        if len(members) > 1
    ]


def _cross_split_duplicates(scan: Scan, threshold: int) -> list[Problem]:
    entries = list(_hr_entries(scan))
    if len(entries) < 2:
        return []
    labels = find_groups(np.array([f.phash for _, f in entries], dtype=np.uint64), threshold)
    by_label: dict[int, list[PairJob]] = defaultdict(list)
    for (job, _), label in zip(entries, labels):
        by_label[int(label)].append(job)
    return [
        _group_problem(scan, "cross_split_duplicate", members, f"same or near-duplicate image (pHash within {threshold} bits)")
        for members in by_label.values()
        if len({j.split for j in members}) > 1
    ]


def _group_problem(scan: Scan, kind: str, members: list[PairJob], what: str) -> Problem:
    splits = ordered_splits({j.split for j in members})
    return Problem(kind, [scan.show(j.hr) for j in members], f"{what} in {', '.join(splits)}")


def _manifest_mismatches(scan: Scan) -> list[Problem]:
    """Compare files against DS/manifest.jsonl (only for datasets built by srdata build)."""
    root, records = scan.layout.root, scan.manifest
    if root is None or records is None:
        return []
    on_disk: dict[str, FileFacts] = {}
    for job, facts in zip(scan.jobs, scan.facts):
        for path, f in ((job.hr, facts.hr), (job.lr, facts.lr)):
            if path is not None and f is not None:
                on_disk[scan.show(path)] = f
    out, listed = [], set()
    for record in records:
        for side in ("hr", "lr"):
            rel = record.get(side)
            if not isinstance(rel, str):
                continue  # a dropped duplicate has hr/lr = null
            listed.add(rel)
            problem = _compare_with_manifest(rel, side, record, on_disk.get(rel), root)
            if problem is not None:
                out.append(problem)
    for rel in sorted(set(on_disk) - listed):
        out.append(Problem("manifest_mismatch", [rel], f"file is not listed in {MANIFEST}"))
    sized_wrong = {f for p in out for f in p.files}
    for job, facts in zip(scan.jobs, scan.facts):
        if facts.lr_pixels_off and not {scan.show(job.hr), scan.show(job.lr)} & sized_wrong:
            out.append(
                Problem(
                    "manifest_mismatch",
                    [scan.show(job.hr), scan.show(job.lr)],
                    f"the LR differs from the manifest's recorded degradation of the HR in {facts.lr_pixels_off} "
                    f"pixels (up to {facts.lr_max_diff} levels): one of the two files changed after the build",
                )
            )
    return out


def _compare_with_manifest(rel: str, side: str, record: dict, facts: FileFacts | None, root: Path) -> Problem | None:
    if facts is None:
        if not (root / rel).exists():
            return Problem("manifest_mismatch", [rel], f"listed in {MANIFEST} but missing")
        return None  # exists outside the scanned split folders: nothing to compare
    expected_hash = record.get(f"{side}_sha256")
    if isinstance(expected_hash, str) and facts.bytes_sha256 != expected_hash:
        return Problem(
            "manifest_mismatch",
            [rel],
            f"sha256 of the file is {facts.bytes_sha256[:12]}..., {MANIFEST} records {expected_hash[:12]}...",
        )
    expected_size = record.get(f"{side}_size")
    if facts.size is not None and isinstance(expected_size, list) and tuple(expected_size) != tuple(facts.size):
        w, h = facts.size
        return Problem(
            "manifest_mismatch", [rel], f"size is {w}x{h}, {MANIFEST} records {expected_size[0]}x{expected_size[1]}"
        )
    return None


# ----------------------------------------------------------------------------- contact sheet


def sheet_pairs(scan: Scan, rows: int, seed: int) -> list[SheetPair]:
    """A seeded sample of the pairs that can be shown (both readable, sizes consistent)."""
    usable = [
        job
        for job, f in zip(scan.jobs, scan.facts)
        if f.hr is not None and f.lr is not None and f.psnr_y is not None
    ]
    pairs = []
    for index in choose_rows([job.split for job in usable], rows, seed):
        job = usable[index]
        hr, lr = decode_dataset_rgb(job.hr.read_bytes()), decode_dataset_rgb(job.lr.read_bytes())
        if hr is None or lr is None:
            raise UserError(f"{job.hr} or {job.lr} changed while inspecting; run inspect again")
        pairs.append(SheetPair(scan.show(job.hr), job.split, hr, lr))
    return pairs
