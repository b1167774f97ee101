"""Helpers shared by several test modules (fixtures live in conftest.py).

The video helpers at the end (write_video, drawing, pan, hold, fade) also make the demo video
(scripts/make_demo_video.py), the sharpness measurement's round trips and bench/frames.py's clip.

Paddle and sr_train are imported inside the helpers that need them, so srdata's tests never pay
for them.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import io
import json
import multiprocessing
import os
import pickle
import resource
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import cv2
import numpy as np
from rich.console import Console

from sr_train.weights import safe_pickle
from srdata.build_options import BuildOptions
from srdata.executor import Executor, LocalExecutor, in_worker
from srdata.inspect import inspect_layout
from srdata.layout import resolve_layout

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"

# ---------------------------------------------------------------------------------------------
# srdata: source images, build options, dataset trees


def blob_image(seed: int, width: int = 96, height: int = 80) -> np.ndarray:
    """Smooth random BGR image: coarse random colours upsampled (distinct pHash per seed)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return img


def write_image(path: Path, bgr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, bgr)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def make_raw(root: Path, n: int, start: int = 0, size=(96, 80)) -> Path:
    for seed in range(start, start + n):
        write_image(root / f"img{seed:03d}.png", blob_image(seed, *size))
    return root


def options(src: Path, out: Path, **kw) -> BuildOptions:
    kw = {"scale": 2, "workers": 1, "val": 0.2, "test": 0.2, **kw}
    return BuildOptions(src=src, out=out, **kw)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (hidden ones too) -> bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def inspect_dataset(ds, hr_dir=None, lr_dir=None, scale=None, workers: int = 1):
    """(report, scan) of `srdata inspect` on a dataset folder or an HR/LR folder pair."""
    return inspect_layout(resolve_layout(ds, hr_dir, lr_dir, scale), LocalExecutor(workers))


def noise_image(seed: int, width: int, height: int) -> np.ndarray:
    """Random BGR noise: a PNG of it is large and slow to encode (writes take a while)."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


class RacingExecutor(Executor):
    """Runs every item twice at the same time, in two processes, and returns the first attempt's
    results: two attempts of one task racing, as on a cluster when a worker declared dead was
    still running, or when a killed client's chunk still runs while the command is re-run."""

    def __init__(self):
        super().__init__()
        self.pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))

    def map(self, fn, items, args=(), shared=(), output_dir=None, on_done=None, name_of=str) -> list:
        results = []
        for item in items:
            first, second = (self.pool.submit(in_worker, fn, item, args) for _ in range(2))
            results.append(first.result())
            second.result()
        return results

    def close(self) -> None:
        self.pool.shutdown()


# ---------------------------------------------------------------------------------------------
# Dask clusters on localhost, started as the README tells users to (`dask scheduler`, `dask worker`)


@dataclass
class DaskCluster:
    address: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    def add_worker(self, cwd: Path, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
        """A `dask worker` process (a nanny and its worker, one thread) started in cwd, optionally
        through a command prefix (e.g. one that enters another mount namespace)."""
        command = [*prefix, str(_dask()), "worker", self.address, "--nthreads", "1", "--no-dashboard",
                   "--host", "127.0.0.1", "--death-timeout", "60"]
        proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.processes.append(proc)
        return proc

    def client(self):
        from distributed import Client  # the optional extra; only cluster tests need it

        return Client(self.address, set_as_default=False, timeout=30)

    def wait_for_workers(self, n: int) -> None:
        with self.client() as client:
            client.wait_for_workers(n, timeout=120)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _dask() -> Path:
    return Path(sys.executable).parent / "dask"


def start_scheduler(folder: Path, **config: str) -> DaskCluster:
    """`dask scheduler` on a free localhost port (Dask config from `config`, e.g.
    allowed_failures="0"); its address is read from its scheduler file."""
    info = folder / "scheduler.json"
    env = {**os.environ, **{f"DASK_DISTRIBUTED__SCHEDULER__{k.upper()}": v for k, v in config.items()}}
    proc = subprocess.Popen([str(_dask()), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                             "--scheduler-file", str(info)], cwd=folder, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return DaskCluster(json.loads(info.read_text())["address"], [proc])
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("dask scheduler did not start")


# --------------------------------------------------------------------------------------------
# Writers for PyTorch-format files (no torch needed)

_STORAGE_NAMES = {np.dtype("float32"): "FloatStorage", np.dtype("float16"): "HalfStorage",
                  np.dtype("float64"): "DoubleStorage", np.dtype("int64"): "LongStorage",
                  np.dtype("uint8"): "ByteStorage", np.dtype("bool"): "BoolStorage"}


class Global:
    """A global the pickle names (GLOBAL opcode) without importing it: torch need not exist here."""

    _made: dict[tuple[str, str], "Global"] = {}

    def __new__(cls, module: str, name: str):
        key = (module, name)
        if key not in cls._made:
            obj = super().__new__(cls)
            obj.module, obj.name = module, name
            cls._made[key] = obj
        return cls._made[key]

    def __call__(self, *args):  # pickle only checks that a reduce function is callable
        raise AssertionError("never called")


class BF16:
    """Marks an array to be stored as a bfloat16 storage (its float32 values' top 16 bits)."""

    def __init__(self, array: np.ndarray):
        self.array = np.asarray(array, np.float32)


class View:
    """A tensor over part of a shared storage: `base` flat, with offset/size/stride in elements."""

    def __init__(self, base: "Storage", offset: int, size: tuple, stride: tuple):
        self.base, self.offset, self.size, self.stride = base, offset, size, stride


class Storage:
    def __init__(self, raw: bytes, storage_name: str, numel: int):
        self.raw, self.storage_name, self.numel = raw, storage_name, numel


def storage_of(value) -> Storage:
    if isinstance(value, BF16):
        halves = (value.array.ravel().view(np.uint32) >> 16).astype("<u2")
        return Storage(halves.tobytes(), "BFloat16Storage", halves.size)
    flat = np.ascontiguousarray(value).ravel()
    return Storage(flat.astype(flat.dtype.newbyteorder("<")).tobytes(), _STORAGE_NAMES[flat.dtype], flat.size)


class _TorchLikePickler(pickle._Pickler):
    """Pickles numpy arrays as torch tensors: `torch._utils._rebuild_tensor_v2(storage, offset,
    size, stride, requires_grad, OrderedDict())`, each storage a persistent id, as torch.save does."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, legacy: bool, rebuild: str = "_rebuild_tensor_v2"):
        super().__init__(file, protocol=2)
        self.legacy = legacy
        self.rebuild = rebuild
        self.storages: dict[str, Storage] = {}
        self.keys: dict[int, str] = {}

    def _save_global_ref(self, obj: Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[Global] = _save_global_ref

    def persistent_id(self, obj):
        if not isinstance(obj, Storage):
            return None
        key = self.keys.setdefault(id(obj), str(len(self.keys)))
        self.storages[key] = obj
        pid = ("storage", Global("torch", obj.storage_name), key, "cpu", obj.numel)
        return pid + (None,) if self.legacy else pid

    def reducer_override(self, obj):
        if isinstance(obj, View):
            args = (obj.base, obj.offset, tuple(obj.size), tuple(obj.stride), False, collections.OrderedDict())
            return Global("torch._utils", self.rebuild), args
        if isinstance(obj, (np.ndarray, BF16)):
            shape = obj.array.shape if isinstance(obj, BF16) else obj.shape
            strides = tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape)))
            return self.reducer_override(View(storage_of(obj), 0, shape, strides))
        return NotImplemented


def torch_pickle(obj, legacy: bool = False, rebuild: str = "_rebuild_tensor_v2") -> tuple[bytes, dict[str, Storage]]:
    buffer = io.BytesIO()
    pickler = _TorchLikePickler(buffer, legacy, rebuild)
    pickler.dump(obj)
    return buffer.getvalue(), pickler.storages


def write_torch_zip(path: Path, obj, data_pkl: bytes | None = None, prefix: str = "archive") -> Path:
    """A file laid out like torch.save's: PREFIX/data.pkl, PREFIX/data/KEY, PREFIX/version, byteorder."""
    pickled, storages = torch_pickle(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{prefix}/data.pkl", pickled if data_pkl is None else data_pkl)
        archive.writestr(f"{prefix}/byteorder", "little")
        for key, storage in storages.items():
            archive.writestr(f"{prefix}/data/{key}", storage.raw)
        archive.writestr(f"{prefix}/version", "3\n")
    return path


def write_torch_legacy(path: Path, obj, main_pickle: bytes | None = None) -> Path:
    """The pre-1.6 stream: magic, version, sys info, the object, the storage keys, then the storages."""
    pickled, storages = torch_pickle(obj, legacy=True)
    with open(path, "wb") as handle:
        pickle.dump(safe_pickle.TORCH_LEGACY_MAGIC, handle, protocol=2)
        pickle.dump(safe_pickle.TORCH_LEGACY_PROTOCOL, handle, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True,
                     "type_sizes": {"short": 2, "int": 4, "long": 4}}, handle, protocol=2)
        handle.write(pickled if main_pickle is None else main_pickle)
        keys = sorted(storages)
        pickle.dump(keys, handle, protocol=2)
        for key in keys:
            handle.write(struct.pack("<q", storages[key].numel) + storages[key].raw)
    return path


# --------------------------------------------------------------------------------------------
# Payloads that would leave a marker file if they ever ran


class _Payload:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def payloads(marker: Path) -> dict[str, _Payload]:
    return {
        "os.system": _Payload(os.system, (f"touch '{marker}'",)),
        "builtins.eval": _Payload(eval, (f"open({str(marker)!r}, 'w').close()",)),
        "subprocess.Popen": _Payload(subprocess.Popen, (["touch", str(marker)],)),
    }


def weights_with(payload) -> dict:
    """A plausible weights dict with the payload hidden among the arrays."""
    return {"conv_first.weight": np.ones((2, 3, 3, 3), np.float32), "meta": payload,
            "conv_last.bias": np.zeros(3, np.float32)}


# ---------------------------------------------------------------------------------------------
# sr_train: tiny models and foreign names


RRDB_ARCH = {"arch": "rrdbnet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 2, "gc": 4, "scale": 4}
COMPACT_ARCH = {"arch": "compact", "in_nc": 3, "out_nc": 3, "nf": 8, "nc": 3, "scale": 4, "skip": "nearest",
                "act": "prelu"}


def make_model(arch: dict, seed: int = 0):
    """A small paddle network with random weights everywhere (Compact's zero-initialised last conv included)."""
    import paddle

    from sr_train.models import build_model, init_weights
    from sr_train.weights.load import model_state

    paddle.seed(seed)
    model = build_model(arch)
    init_weights(model, seed)
    rng = np.random.default_rng(seed + 1)
    state = {k: (v + rng.normal(0, 0.05, v.shape)).astype(np.float32) for k, v in model_state(model).items()}
    model.set_state_dict(state)
    model.eval()
    return model


def predict(model, seed: int = 5) -> np.ndarray:
    """The model's output on a fixed random 8x12 input."""
    import paddle

    x = np.random.default_rng(seed).random((1, 3, 8, 12), dtype=np.float32)
    with paddle.no_grad():
        return model(paddle.to_tensor(x)).numpy()


def basicsr_names(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """srkit/PaddleGAN RRDBNet names -> BasicSR's (written out here independently of foreign.py)."""
    renamed = collections.OrderedDict()
    for name, value in state.items():
        parts = name.split(".")
        if parts[0] == "RRDB_trunk":  # RRDB_trunk.i.RDBk.convj.param -> body.i.rdbk.convj.param
            name = f"body.{parts[1]}.rdb{parts[2][3:]}.{parts[3]}.{parts[4]}"
        else:
            layer = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2",
                     "HRconv": "conv_hr"}.get(parts[0], parts[0])
            name = f"{layer}.{parts[1]}"
        renamed[name] = value
    return renamed


def old_esrgan_names(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """srkit RRDBNet names -> the original ESRGAN's one-Sequential names (x4 layout; written out here
    independently of sr_train.models.rrdbnet)."""
    nb = len({name.split(".")[1] for name in state if name.startswith("RRDB_trunk.")})
    top = {"conv_first": "model.0", "trunk_conv": f"model.1.sub.{nb}", "upconv1": "model.3", "upconv2": "model.6",
           "HRconv": "model.8", "conv_last": "model.10"}
    renamed = collections.OrderedDict()
    for name, value in state.items():
        parts = name.split(".")
        if parts[0] == "RRDB_trunk":  # RRDB_trunk.i.RDBk.convj.param -> model.1.sub.i.RDBk.convj.0.param
            renamed[f"model.1.sub.{parts[1]}.{parts[2]}.{parts[3]}.0.{parts[4]}"] = value
        else:
            renamed[f"{top[parts[0]]}.{parts[1]}"] = value
    return renamed


def write_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk of a PNG, in file order."""
    pos, chunks = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        chunks.append((png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    chunk = struct.pack(">I", len(body)) + kind + body
    return chunk + struct.pack(">I", zlib.crc32(chunk[4:]) & 0xFFFFFFFF)


def png_filter_bytes(png: bytes, width: int) -> set[int]:
    """The filter type byte of every row of an 8-bit RGB PNG."""
    rows = zlib.decompress(b"".join(body for kind, body in png_chunks(png) if kind == b"IDAT"))
    return set(rows[:: width * 3 + 1])


# ---------------------------------------------------------------------------------------------
# sr_train: tiny training runs (on conftest's pairs_dir)


def tiny_recipe(pairs_dir: Path, run_dir: Path, **overrides) -> dict:
    raw = {
        "seed": 7, "run_dir": str(run_dir),
        "data": {"train": {"gt": str(pairs_dir / "train"), "lq": str(pairs_dir / "train_lq")},
                 "val": {"gt": str(pairs_dir / "val"), "lq": str(pairs_dir / "val_lq")}},
        "model": {"arch": "compact", "nf": 8, "nc": 1},
        "train": {"iters": 6, "batch_size": 2, "patch_size": 32, "lr": 1e-3, "processes": 1},
        "val": {"interval": 3}, "checkpoint": {"interval": 3, "keep_states": 2}, "log": {"interval": 1},
    }
    for key, value in overrides.items():
        node = raw
        *parents, last = key.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return raw


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def run(raw: dict, resume=None, console=None):
    """`sr_train.fit.fit` on a recipe dict, quietly."""
    from sr_train.fit import fit
    from sr_train.recipe import recipe_from_dict

    return fit(recipe_from_dict(raw, "test.yaml"), resume=resume, progress=False, console=console or quiet())


# ---------------------------------------------------------------------------------------------
# srdata frames: short videos made with PyAV from the bundled samples

# av.VideoReformatter names of the (matrix, range) tags a test video can carry.
MATRICES = {"bt709": "ITU709", "bt601": "ITU601"}
# AVColorSpace / AVColorRange numbers written into the stream for them.
_COLORSPACE_TAG = {"bt709": 1, "bt601": 6, None: 2}
_RANGE_TAG = {"tv": 1, "pc": 2, None: 0}


def write_video(
    path: Path, frames: Iterable, fps: int = 24, codec: str = "libx264", pix_fmt: str = "yuv420p",
    matrix: str | None = "bt709", colour_range: str | None = "tv", options: dict | None = None,
    pts: list[int] | None = None, time_base: Fraction | None = None,
) -> Path:
    """Encode frames (uint8 HxWx3 RGB arrays, or av.VideoFrames already in pix_fmt) into `path`.

    RGB frames are converted with `matrix`/`colour_range` (untagged streams: BT.601 limited) and
    the stream is tagged with them (None = left unspecified). libx264 gets a keyframe every 12
    frames (so seeking lands all over a short clip) and `options` on top. Frame i is shown at
    i / fps, or at pts[i] * time_base when given (a variable frame rate).
    """
    container = av.open(str(path), "w")
    stream = None
    for index, image in enumerate(frames):
        if stream is None:
            height, width = (image.height, image.width) if isinstance(image, av.VideoFrame) else image.shape[:2]
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.codec_context.colorspace = _COLORSPACE_TAG[matrix]
            stream.codec_context.color_range = _RANGE_TAG[colour_range]
            base = {"preset": "ultrafast", "g": "12", "threads": "1"} if codec == "libx264" else {}
            stream.options = {**base, **(options or {})}
            if time_base is not None:
                stream.time_base = stream.codec_context.time_base = time_base
        if isinstance(image, av.VideoFrame):
            frame = image
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(
                format=pix_fmt, dst_colorspace=MATRICES.get(matrix, "ITU601"),
                dst_color_range="JPEG" if colour_range == "pc" else "MPEG",
                interpolation="BILINEAR",
            )
        frame.pts = index if pts is None else pts[index]
        if time_base is not None:
            frame.time_base = time_base
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def sample_paths() -> list[Path]:
    return sorted(SAMPLES.glob("*.png"))


def drawing(index: int, width: int, background: tuple[int, int, int] | None = None) -> np.ndarray:
    """Bundled sample `index` (RGB), shrunk to `width` with INTER_AREA (so it stays sharp); its
    white paper turned into `background` when given (scenes then differ in colour, as in anime)."""
    bgr = cv2.imread(str(sample_paths()[index % len(sample_paths())]), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    height = round(rgb.shape[0] * width / rgb.shape[1])
    rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    if background is not None:
        paper = rgb.min(axis=2) > 235
        rgb[paper] = background
    return rgb


def pan(picture: np.ndarray, height: int, frames: int, hold: int = 2, speed: int = 3) -> list[np.ndarray]:
    """`frames` frames of a vertical pan down `picture` (wrapping), the drawing held `hold` frames
    (anime on twos/threes): `speed` pixels per new drawing."""
    tall = np.concatenate([picture, picture], axis=0)
    out = []
    for index in range(frames):
        top = (index // hold) * speed % picture.shape[0]
        out.append(np.ascontiguousarray(tall[top : top + height]))
    return out


def hold(picture: np.ndarray, height: int, frames: int) -> list[np.ndarray]:
    """A still shot: the top of `picture` for `frames` frames."""
    return pan(picture, height, frames, hold=frames)


def fade(frames: list[np.ndarray], to_black: int) -> list[np.ndarray]:
    """`frames` with the last `to_black` of them fading linearly to black (the last one black)."""
    out = list(frames)
    for k in range(to_black):
        factor = 1 - (k + 1) / to_black
        index = len(out) - to_black + k
        out[index] = np.rint(out[index] * factor).astype(np.uint8)
    return out


# ---------------------------------------------------------------------------------------------
# torch and spandrel (test extra): the other side of srkit's BasicSR export


def import_spandrel():
    """spandrel, imported so that it works with torch's CPU wheel.

    PyPI's torchvision wheels (spandrel depends on torchvision) are CUDA builds: against the CPU
    torch that the test extra pins, torchvision's C extension cannot load, and torchvision 0.28 then
    fails on import when it registers fake kernels for two of that extension's ops (`nms`, `qnms`),
    whatever the caller wanted. spandrel imports torchvision for two architectures srkit never
    uses (LaMa, RestoreFormer), so when the extension cannot load, those two op schemas are
    declared first and torchvision's import completes; nothing srkit's tests run calls them.
    """
    import glob
    import importlib.util

    import torch

    spec = importlib.util.find_spec("torchvision")
    extensions = glob.glob(os.path.join(os.path.dirname(spec.origin), "_C.*")) if spec else []
    try:
        for path in extensions:
            torch.ops.load_library(path)
        usable = bool(extensions)
    except OSError:
        usable = False
    if not usable and not hasattr(import_spandrel, "library"):
        library = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import_spandrel.library = library  # keep the definitions alive for the session
    import spandrel

    return spandrel


# ---------------------------------------------------------------------------------------------
# Real processes (tests/test_faults.py): the tools run as a user runs them

TOOLS = {"srdata": "srdata.cli", "sr-train": "sr_train.cli"}


def tool(name: str) -> list[str]:
    """The command line that starts srkit tool `name` ("srdata" or "sr-train") with this interpreter."""
    return [sys.executable, "-m", TOOLS[name]]


def run_tool(name: str, *args, cwd=None, preexec_fn=None, timeout: float = 600,
             env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a tool to its end in a fresh process; stdout and stderr as text."""
    return subprocess.run([*tool(name), *map(str, args)], cwd=cwd, preexec_fn=preexec_fn, timeout=timeout,
                          capture_output=True, text=True, env=env, errors="backslashreplace")


def run_python(code: str, *args, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `code` (with `args` as sys.argv[1:]) in a fresh interpreter from the repository root, e.g. to see
    what an import pulls in without this test process's modules; stdout and stderr as text."""
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=env, timeout=timeout,
                          capture_output=True, text=True)


def start_tool(name: str, *args, cwd=None, new_session: bool = False, env: dict | None = None) -> subprocess.Popen:
    """Start a tool in a fresh process (stdout/stderr piped, text); `new_session` gives it its own
    process group, so a test can send the group a terminal's Ctrl-C (os.killpg)."""
    return subprocess.Popen([*tool(name), *map(str, args)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="backslashreplace", start_new_session=new_session, env=env)


def one_error_line(stderr: str, prog: str) -> str:
    """The error line of `stderr`: exactly one `PROG: error: ...` line (progress bars and notes may
    precede it), and no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def file_size_limit(max_bytes: int):
    """A preexec_fn: files of the new process may not grow beyond `max_bytes` (`ulimit -f`); SIGXFSZ
    ignored, so a write past the limit fails with EFBIG instead of killing the process."""
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return limit


CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
PR_CAPBSET_DROP = 24


def permissions_enforced() -> tuple[object, str]:
    """(preexec_fn, "") that makes a new process subject to file permissions, or (None, why not).

    Tests often run as root, which reads a chmod 000 file anyway. A root process is made to obey
    permissions by dropping CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its capability bounding set
    before it executes: it keeps uid 0 (so it can still read root's 0700 temp folders) but no longer
    bypasses permission bits. Where that is not allowed (no CAP_SETPCAP), the caller skips.
    """
    if os.geteuid() != 0:
        return None, ""
    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")

    try:
        subprocess.run(["true"], preexec_fn=drop, check=True)
    except (subprocess.SubprocessError, OSError):
        return None, "running as root and cannot drop CAP_DAC_OVERRIDE, so chmod 000 would not deny reads"
    return drop, ""


@contextlib.contextmanager
def holding_lock(folder: Path, command: str = "test holder"):
    """A real process holding `folder`'s srkit lock (srdata.folderlock) until the block ends (then it
    releases it cleanly, unless the test killed it); yields the process."""
    code = ("import signal, sys, time\nfrom srdata.folderlock import hold_folder\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
            f"with hold_folder({str(folder)!r}, 'folder', {command!r}):\n"
            "    print('held', flush=True)\n    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()  # a clean exit: the holder releases the lock and removes its file
        proc.wait()


def children_of(pid: int) -> list[int]:
    """Pids of the live child processes of `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, timeout: float = 60, what: str = "condition") -> None:
    """Poll `condition()` every 50 ms until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
