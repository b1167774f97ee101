"""`srdata build`: a folder of raw images -> a paired HR/LR dataset PaddleGAN can read.

The build is a pure function of (sources, options): the dataset it leaves is the same bytes
whatever the worker count, whatever was in the output folder before, and whether or not an
earlier run was killed half way. It gets there like this:

1. Scan RAW. A source whose size and mtime match the previous manifest is not read at all:
   its SHA-256, pHash and size come from the manifest ("probe cache").
2. Read and decode every other source in parallel (hash, pHash, size). Since it is decoded
   anyway, its HR and LR are made there and then and parked in `DS/.staging/KEY.png`,
   named by their output key, so no source is ever decoded twice.
3. Reject, deduplicate, name and split (cheap, in the main process: srdata.build_plan).
4. Every output file carries its output key (a hash of the source content and of every
   setting that affects that file) in a PNG tEXt chunk. A wanted file already on disk with the
   right key is kept or moved (a changed --val only renames files); only missing ones are
   made, in a second parallel pass that decodes just those sources.
5. Move staged files into place, delete what is no longer wanted (stale outputs, temp files
   of killed runs, the staging folder), and write the manifests last, each atomically.

Because every file is either renamed into place whole or checked by its key before it is
trusted, a kill at any moment leaves nothing a re-run can mistake for finished work.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

import srdata
from srdata.atomic import is_temp_name, write_bytes, write_json, write_jsonl
from srdata.build_options import BuildOptions
from srdata.build_plan import Plan, Probe, make_plan, output_keys, plan_geometry, rejection
from srdata.cliutil import default_workers, progress_bar
from srdata.dedup import hex_to_u64, phash_hex, phash_u64
from srdata.errors import UserError
from srdata.executor import Executor, LocalExecutor, SharedFile
from srdata.imageio import (
    SOURCE_EXTENSIONS,
    TOO_MANY_PIXELS,
    TREE_PROBLEMS,
    RejectedImage,
    decode_opened,
    encode_png,
    open_header,
    png_as_output,
    read_output_key,
    reason_kind,
    scan_images,
)
from srdata.jsonio import read_jsonl
from srdata.layout import (DATASET, DATASET_FORMAT, DATASET_FORMAT_VERSION, DUPLICATES, MANIFEST, METADATA_FILES,
                           REJECTED, SPLITS, STAGING, check_dataset_format, is_split_folder, lr_dir,
                           read_frame_origins)
from srdata.resize import resize

# Rejections that depend on options (recomputed every run from the cached size).
_OPTION_DEPENDENT = ("too small", TOO_MANY_PIXELS)
UNREADABLE = "unreadable"
CHANGED = "changed while read"
# Rejections never taken from the previous run's record: the file is looked at again (its
# permissions, a link's target or a file being written may have changed without its size or mtime).
_NOT_CACHED = (UNREADABLE, CHANGED, *TREE_PROBLEMS)


# ---------------------------------------------------------------------------------------------
# The worker: read, hash, decode, make HR/LR into staging


@dataclass(frozen=True)
class _Task:
    index: int
    path: str
    probe: Probe | None  # known facts (then only outputs are wanted), or None = read it
    hints: tuple[str, ...] = ()  # files that may already hold this source's outputs


@dataclass(frozen=True)
class _Done:
    index: int
    probe: Probe
    decoded: bool
    written: int = 0  # PNG files made


def _run_task(task: _Task, opts: BuildOptions, staging: str) -> _Done:
    try:
        stat, data = read_whole(Path(task.path))
    except RejectedImage as exc:
        known = task.probe or Probe("", 0, 0)
        return _Done(task.index, Probe(known.source, 0, 0, error=str(exc)), False)
    probe = task.probe or Probe("", stat.st_size, stat.st_mtime_ns)
    digest = hashlib.sha256(data).hexdigest()
    if probe.sha256 is None:
        probe.sha256 = digest
    elif probe.sha256 != digest:  # read again to make its outputs, but it is not the content planned for
        return _Done(task.index, Probe(probe.source, 0, 0, error=f"{CHANGED} (its content is no longer what was "
                                                                 "hashed; run the build again)"), False)
    try:
        img = open_header(data)
        probe.size = img.size
        if rejection(probe, opts) is not None:
            return _Done(task.index, probe, False)
        bgr = decode_opened(img, data)
    except RejectedImage as exc:
        probe.error = str(exc)
        return _Done(task.index, probe, False)
    height, width = bgr.shape[:2]
    probe.size = (width, height)
    if probe.phash is None:
        probe.phash = phash_u64(Image.frombuffer("RGB", (width, height), bgr, "raw", "BGR", 0, 1))
    if rejection(probe, opts) is not None:
        return _Done(task.index, probe, True)
    written = _make_outputs(bgr, data, probe, opts, Path(staging), task.hints)
    return _Done(task.index, probe, True, written)


def read_whole(path: Path) -> tuple[os.stat_result, bytes]:
    """(stat, bytes) of a source read in one go; RejectedImage if it cannot be read, or if it changed
    while being read (its size or mtime moved, or fewer/more bytes came than it said it had), so that
    no hash, size or output ever describes a file that was half rewritten."""
    try:
        with open(path, "rb") as handle:
            before = os.fstat(handle.fileno())
            data = handle.read()
            after = os.fstat(handle.fileno())
    except OSError as exc:
        raise RejectedImage(UNREADABLE, exc.strerror or str(exc)) from None
    if len(data) != before.st_size or (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise RejectedImage(CHANGED, f"{before.st_size} bytes when opened, {len(data)} read, {after.st_size} after; "
                                     "something is writing it: run the build again when it is done")
    return before, data


def _make_outputs(bgr: np.ndarray, data: bytes, probe: Probe, opts: BuildOptions, staging: Path, hints) -> int:
    """Write the HR and LR not already found (by key) in staging or the hinted files.

    An HR that is the whole source, unresized, reuses the source's compressed pixels when it is
    an 8-bit RGB PNG (`png_as_output`: the same pixels, no encode); every other PNG is encoded
    with the fast filter. Returns how many files it wrote.
    """
    record = opts.draw(probe.sha256)
    hr_key, lr_key = output_keys(probe, opts, record)
    missing = [key for key in (hr_key, lr_key) if _find(key, staging, hints) is None]
    if not missing:
        return 0
    geo = plan_geometry(probe.size, opts)
    hr = bgr if geo.resized is None else resize(bgr, geo.resized, opts.hr_resize)
    hr = hr[: geo.hr[1], : geo.hr[0]]
    if hr_key in missing:
        whole = geo.resized is None and geo.hr == (bgr.shape[1], bgr.shape[0])
        png = png_as_output(data, hr_key) if whole else None
        write_output(staging / f"{hr_key}.png", png or encode_png(hr, opts.png_level, hr_key, fast=True))
    if lr_key in missing:
        lr = record.apply(np.ascontiguousarray(hr))
        write_output(staging / f"{lr_key}.png", encode_png(lr, opts.png_level, lr_key, fast=True))
    return len(missing)


def write_output(path: Path, data: bytes) -> None:
    """Atomic like every srkit write, but without one fsync per file.

    A kill cannot leave a half file under the final name either way; what fsync adds is
    durability on power loss, and one per PNG cost ~10% of the build. Durability is kept by
    one os.sync() before the manifests are written (see `_flush_outputs`).
    """
    write_bytes(path, data, fsync=False)


def _flush_outputs() -> None:
    """Make every output durable before the manifests that describe them are written."""
    if hasattr(os, "sync"):
        os.sync()


def _find(key: str, staging: Path, candidates) -> Path | None:
    """A file holding exactly the output with this key: staged, or one of the candidates."""
    staged = staging / f"{key}.png"
    if staged.exists():
        return staged
    for path in candidates:
        if read_output_key(path) == key:
            return Path(path)
    return None


# ---------------------------------------------------------------------------------------------
# The build


@dataclass
class BuildReport:
    out: Path
    counts: dict[str, int]  # train / val / test / duplicates / rejected / sources
    rejected: list[dict]  # {"source", "reason"}
    decoded: int = 0  # sources decoded this run (0 when nothing changed)
    written: int = 0  # PNG files encoded this run
    seconds: float = 0.0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    split_groups: dict[str, int] = field(default_factory=dict)  # split -> videos (or scenes) in it
    by_worker: dict[str, int] = field(default_factory=dict)  # images each cluster worker ran
    notes: list[str] = field(default_factory=list)  # what the user should know (e.g. a damaged manifest)


def build_dataset(opts: BuildOptions, progress: bool = True, executor: Executor | None = None) -> BuildReport:
    """Build (or bring up to date) the dataset opts.out from the images under opts.src.

    The per-image work runs on `executor` (default: opts.workers local processes).
    """
    started = time.perf_counter()
    opts.validate()
    src, out = Path(opts.src), Path(opts.out)
    sources, unusable = scan_sources(src, out)
    origins = read_frame_origins(src, {(src / rel).parent for rel, _, _ in sources}) if opts.group_by != "image" else {}
    _check_out_folder(out)
    _check_not_newer(out)
    src, out = src.absolute(), out.absolute()  # paths the workers get mean the same in any cwd
    previous, old_outputs, note = load_previous(out)
    staging = out / STAGING
    executor = executor or LocalExecutor(opts.workers or default_workers())
    source = SharedFile(f"--src {src}", str(src / sources[0][0]), sources[0][1])  # workers must see it
    created_out = not out.exists()

    # 1-2: probes from the cache, or read/decoded now (with outputs made speculatively)
    probes: dict[str, Probe] = {}
    tasks = []
    for index, (rel, size, mtime_ns) in enumerate(sources):
        cached = previous.get(rel)
        if cached and (cached.bytes, cached.mtime_ns) == (size, mtime_ns) and _usable(cached, opts):
            probes[rel] = cached
        else:
            tasks.append(_Task(index, str(src / rel), None, old_outputs.hints(rel)))
    try:
        done = _run_parallel(tasks, opts, staging, executor, source, progress, "reading sources")
        decoded = sum(d.decoded for d in done)
        written = sum(d.written for d in done)
        for d in done:
            rel = sources[d.index][0]
            d.probe.source = rel
            probes[rel] = d.probe

        while True:
            # 3: reject, deduplicate, name, split
            plan = make_plan(sources, probes, opts, origins, unusable)

            # 4: make what is missing (decodes only sources whose outputs are gone or outdated)
            wanted = plan.wanted_outputs(opts)
            tasks, in_place = _missing_tasks(src, out, plan, wanted, staging, old_outputs)
            done = _run_parallel(tasks, opts, staging, executor, source, progress, "writing outputs")
            decoded += sum(d.decoded for d in done)
            written += sum(d.written for d in done)
            failed = [d for d in done if d.probe.error is not None]
            if not failed:
                break
            for d in failed:  # unreadable or changed since it was hashed: rejected, and the plan redone
                rel = sources[d.index][0]
                d.probe.source = rel
                probes[rel] = d.probe
    except UserError:
        _discard_staging(out, staging, created_out)
        raise

    # 5: move into place, clean up, write the manifests last
    out.mkdir(parents=True, exist_ok=True)
    _place(out, staging, wanted, old_outputs, in_place)
    _remove_stale(out, {rel for rel, _, _ in wanted})
    _flush_outputs()
    report = _write_metadata(out, plan, opts)
    report.decoded, report.written = decoded, written
    report.by_worker = dict(sorted(executor.done_by.items()))
    report.notes = [note] if note else []
    report.seconds = time.perf_counter() - started
    return report


def _usable(probe: Probe, opts: BuildOptions) -> bool:
    """A cached probe answers everything unless the source is now accepted but was never hashed."""
    return probe.error is not None or rejection(probe, opts) is not None or probe.phash is not None


def scan_sources(src: Path, out: Path) -> tuple[list[tuple[str, int, int]], list[tuple[str, str]]]:
    """(relative posix path, size, mtime_ns) of every image file under src, sorted by path, and
    (relative path, reason) of what could not be used (`srdata.imageio.scan_images`: links are
    followed once, loops and the like are reported). Hidden files and folders are skipped, and so
    is the output folder if it is inside src.
    """
    scan = scan_images(src, exclude=out)
    found, unusable = [], [(path.relative_to(src).as_posix(), reason) for path, reason in scan.problems]
    for path in scan.files:
        info = scan.stats[path]  # as listed; a file changed since then is caught when it is read
        found.append((path.relative_to(src).as_posix(), info.st_size, info.st_mtime_ns))
    if not found:
        first = sorted(unusable)[0] if unusable else None
        also = f"; {len(unusable)} entries could not be used, first {first[0]}: {first[1]}" if first else ""
        raise UserError(
            f"--src {src}: no images found (looked for {', '.join(SOURCE_EXTENSIONS)} in all subfolders{also})"
        )
    return found, sorted(unusable)


def _check_out_folder(out: Path) -> None:
    """Refuse to build into a folder holding anything srdata build did not write."""
    if not out.is_dir():
        return
    for entry in sorted(os.listdir(out)):
        # Hidden entries pass: ours (staging, temp files) or harmless (.DS_Store), never deleted
        # unless they are ours.
        ours = entry in METADATA_FILES or entry.startswith(".") or is_split_folder(entry)
        if not ours:
            raise UserError(
                f"--out {out}: already holds {entry!r}, which srdata build did not write; "
                "choose a new or empty folder"
            )


def _check_not_newer(out: Path) -> None:
    """Refuse to update a dataset written by a newer srkit (its manifest may mean other things).
    A missing or damaged dataset.json is no obstacle: the build writes it anew."""
    try:
        meta = json.loads((out / DATASET).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(meta, dict):
        check_dataset_format(meta, out / DATASET)


def load_previous(out: Path) -> tuple[dict[str, Probe], _OldOutputs, str | None]:
    """Probes and output paths recorded by the previous build (empty if none or unreadable), and a
    note saying why when the record could not be used.

    Only facts about source files are trusted from here (checked by size and mtime); output
    files are always checked by their output key before being reused.
    """
    probes: dict[str, Probe] = {}
    outputs: dict[str, dict] = {}
    try:
        for line in read_jsonl(out / MANIFEST):
            rel = line["source"]
            probes[rel] = Probe(
                rel, int(line["bytes"]), int(line["mtime_ns"]), line["sha256"],
                tuple(line["source_size"]), hex_to_u64(line["phash"]),
            )
            outputs[rel] = {"id": line["id"], "hr": line["hr"], "lr": line["lr"]}
        for line in read_jsonl(out / REJECTED):
            rel, reason = line["source"], line["reason"]
            if reason_kind(reason) in _NOT_CACHED:
                continue
            size = tuple(line["source_size"]) if line.get("source_size") else None
            phash = hex_to_u64(line["phash"]) if line.get("phash") else None
            dependent = reason_kind(reason) in _OPTION_DEPENDENT
            if dependent and size is None:
                continue
            probes[rel] = Probe(
                rel, int(line["bytes"]), int(line["mtime_ns"]), line.get("sha256"), size, phash,
                None if dependent else reason,
            )
    except (OSError, ValueError, KeyError, TypeError, UserError) as exc:  # damaged: re-read every source
        probes, outputs = {}, {}
        detail = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        note = f"the previous build's record could not be used ({detail}): every source was read again"
        return probes, _OldOutputs(out, outputs, _split_folders(out)), note
    return probes, _OldOutputs(out, outputs, _split_folders(out)), None


@dataclass
class _OldOutputs:
    """Where the previous build put each source's files (hints only: checked by key before use)."""

    out: Path
    entries: dict[str, dict]  # source -> {"id", "hr", "lr"}
    folders: list[str]  # split folders present when this build started

    def hints(self, source: str) -> tuple[str, ...]:
        """The previous manifest's paths, then the source's previous name in every split folder
        (where a killed build may have moved it)."""
        old = self.entries.get(source)
        if not old:
            return ()
        paths = [old["hr"], old["lr"]] if old["hr"] else []
        paths += [f"{folder}/{old['id']}.png" for folder in self.folders]
        return tuple(str(self.out / p) for p in dict.fromkeys(paths))


def _split_folders(out: Path) -> list[str]:
    try:
        return sorted(e for e in os.listdir(out) if is_split_folder(e))
    except OSError:
        return []


def _run_parallel(tasks, opts, staging: Path, executor: Executor, source: SharedFile, progress: bool,
                  label: str) -> list[_Done]:
    """Run tasks on the executor with a progress bar; results in task order (the executor's promise).

    Workers write only into staging; `source` is a file they must see as this process does.
    """
    if not tasks:
        return []
    with progress_bar("images", progress) as bar:
        task_id = bar.add_task(label, total=len(tasks))
        return executor.map(_run_task, tasks, (opts, str(staging)), [source], output_dir=staging,
                            on_done=lambda n: bar.advance(task_id, n), name_of=lambda t: t.path)


def _missing_tasks(src: Path, out: Path, plan: Plan, wanted, staging: Path, old_outputs):
    """(tasks, in_place): tasks for kept sources with an output that exists nowhere with the
    right key, and the wanted paths that already hold the right file.

    The worker gets the wanted paths and old locations as hints, so it encodes only the file
    that is actually missing (e.g. just the LR when only --blur changed).
    """
    order = {p.source: i for i, p in enumerate(plan.accepted)}
    probe = {p.source: p for p in plan.accepted}
    in_place = {rel for rel, key, _ in wanted if read_output_key(out / rel) == key}
    missing = {
        source for rel, key, source in wanted
        if rel not in in_place and _find(key, staging, old_outputs.hints(source)) is None
    }
    hints: dict[str, list[str]] = {}
    for rel, _, source in wanted:
        hints.setdefault(source, []).append(str(out / rel))
    tasks = [
        _Task(order[source], str(src / source), probe[source], tuple(hints[source]) + old_outputs.hints(source))
        for source in sorted(missing, key=order.get)
    ]
    return tasks, in_place


def _place(out: Path, staging: Path, wanted, old_outputs, in_place: set[str]) -> None:
    """Put every wanted file at its path, by renames only (copies for identical twins)."""
    pending = [(rel, key, src) for rel, key, src in wanted if rel not in in_place]
    # Park reusable files first, so that a file moving to a path another file is leaving
    # never overwrites it before it has moved.
    for rel, key, source in pending:
        staged = staging / f"{key}.png"
        if staged.exists():
            continue
        found = _find(key, staging, old_outputs.hints(source))
        if found is None:
            raise RuntimeError(f"srdata build: no file made for {rel} (key {key}); this is a bug")
        staging.mkdir(parents=True, exist_ok=True)
        if found.relative_to(out).as_posix() in in_place:
            write_output(staged, found.read_bytes())
        else:
            os.replace(found, staged)
    uses = Counter(key for _, key, _ in pending)
    for rel, key, _ in pending:
        staged = staging / f"{key}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        uses[key] -= 1
        if uses[key]:
            write_output(out / rel, staged.read_bytes())
        else:
            os.replace(staged, out / rel)


def _remove_stale(out: Path, wanted: set[str]) -> None:
    """Delete outputs no longer wanted, temp files of killed runs, staging, empty split folders."""
    for entry in sorted(os.listdir(out)):
        path = out / entry
        if entry == STAGING:
            shutil.rmtree(path, ignore_errors=True)
        elif is_split_folder(entry) and path.is_dir():
            for name in os.listdir(path):
                if f"{entry}/{name}" not in wanted and (path / name).is_file():
                    (path / name).unlink()
            if not os.listdir(path):
                path.rmdir()
        elif is_temp_name(entry):
            path.unlink()


def _discard_staging(out: Path, staging: Path, created_out: bool) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if created_out and out.is_dir() and not os.listdir(out):
        out.rmdir()


def _write_metadata(out: Path, plan: Plan, opts: BuildOptions) -> BuildReport:
    """rejected.jsonl, duplicates.json, manifest.jsonl, then dataset.json, each atomically."""
    rejected = [
        {
            "source": p.source, "reason": reason, "bytes": p.bytes, "mtime_ns": p.mtime_ns,
            "sha256": p.sha256, "source_size": list(p.size) if p.size else None,
            "phash": phash_hex(p.phash) if p.phash is not None else None,
        }
        for p, reason in plan.rejected
    ]
    manifest = []
    for probe in plan.accepted:
        keeper = plan.keeper[probe.source]
        line = {
            "id": plan.ids[probe.source], "source": probe.source, "sha256": probe.sha256,
            "phash": phash_hex(probe.phash), "group": plan.ids[keeper],
            "source_size": list(probe.size), "bytes": probe.bytes, "mtime_ns": probe.mtime_ns,
            "split": None, "split_group": None, "dup_of": None, "hr": None, "lr": None, "hr_size": None,
            "lr_size": None, "hr_resize": None, "crop": None, "degradation": None,
        }
        if keeper != probe.source:
            line["dup_of"] = plan.ids[keeper]
        else:
            geo = plan_geometry(probe.size, opts)
            hr, lr = plan.output_paths(probe.source, opts.scale)
            line.update(
                split=plan.split[probe.source], split_group=plan.split_group.get(probe.source),
                hr=hr, lr=lr, hr_size=list(geo.hr), lr_size=list(geo.lr),
                crop=geo.crop(), degradation=plan.records[probe.source].to_json(),
                hr_resize=None if geo.resized is None else {
                    "from": list(probe.size), "to": list(geo.resized), "filter": opts.hr_resize
                },
            )
        manifest.append(line)
    groups = {}
    for probe in plan.accepted:
        keeper = plan.keeper[probe.source]
        if keeper != probe.source:
            groups.setdefault(keeper, []).append(
                {"id": plan.ids[probe.source], "source": probe.source, "distance": plan.distance[probe.source]}
            )
    duplicates = {
        "threshold": plan.threshold,
        "groups": [
            {"group": plan.ids[k], "kept": k, "dropped": groups[k]} for k in sorted(groups)
        ],
    }
    counts = Counter(plan.split.values())
    by_reason = Counter(reason_kind(reason) for _, reason in plan.rejected)
    counts = {
        "sources": len(plan.accepted) + len(plan.rejected),
        **{split: counts.get(split, 0) for split in SPLITS},
        "duplicates": len(plan.accepted) - len(plan.split),
        "rejected": len(plan.rejected),
    }
    split_groups = {
        split: len({g for source, g in plan.split_group.items() if plan.split[source] == split}) for split in SPLITS
    }
    dataset = {
        "format": DATASET_FORMAT,
        "format_version": DATASET_FORMAT_VERSION,
        "version": srdata.__version__,
        "scale": opts.scale,
        "layout": {s: {"hr": s, "lr": lr_dir(s, opts.scale)} for s in SPLITS},
        "settings": opts.settings(),
        "counts": counts,
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "split_groups": split_groups,
    }
    write_jsonl(out / REJECTED, rejected)
    write_json(out / DUPLICATES, duplicates)
    write_jsonl(out / MANIFEST, manifest)
    write_json(out / DATASET, dataset)
    return BuildReport(
        out=out, counts=counts,
        rejected=[{"source": p.source, "reason": r} for p, r in plan.rejected],
        rejected_by_reason=dict(by_reason), split_groups=split_groups if plan.split_group else {},
    )
