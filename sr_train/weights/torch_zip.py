"""Write PyTorch's `torch.save` zip format without importing torch, so srkit can hand its models to
BasicSR, Real-ESRGAN and chaiNNer (spandrel) users as the `.pth` files they expect.

Layout, as torch >= 1.6 writes it (checked against torch 2.13's own files): a stored (uncompressed)
zip whose records all live in one folder, `archive/`:
- `data.pkl`: a protocol-2 pickle of the object. A tensor is pickled as
  `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, collections.OrderedDict())` and
  its storage as the persistent id `("storage", torch.FloatStorage, KEY, "cpu", numel)`;
- `data/KEY`: the storage's raw little-endian bytes, each starting at a multiple of 64 bytes in the
  file (torch pads the local header's extra field with an "FB" record for this; `torch.load(mmap=True)`
  relies on it);
- `byteorder` ("little"), `version` ("3"), `.format_version` ("1"), `.storage_alignment` ("64").

The pickle names only the globals that `torch.load(weights_only=True)` and spandrel's restricted
unpickler allow (`_rebuild_tensor_v2`, the typed storage classes, `OrderedDict`), so the files load
in both. The opcodes are written here directly (Python's pickler would have to import torch to name
its globals). Same tree -> same bytes (fixed timestamps, storages numbered in order).
"""

from __future__ import annotations

import os
import pickle
import struct
import zipfile

import numpy as np

from srdata.atomic import atomic_open

ARCHIVE = "archive"
ALIGNMENT = 64
FORMAT_VERSION = b"3\n"  # the `version` record torch >= 1.6 writes
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed record dates: same tree, same bytes
LOCAL_HEADER = 30  # bytes of a zip local file header before the name
PADDING_ID = b"FB"  # torch's extra-field id for alignment padding
ZIP64_EXTRA = 20  # the zip64 field zipfile adds to the local header of records near 2 GiB

# numpy dtype -> the storage class torch pickles for it (spandrel allows these).
STORAGE_CLASSES = {
    np.dtype("float32"): "FloatStorage",
    np.dtype("float16"): "HalfStorage",
    np.dtype("float64"): "DoubleStorage",
    np.dtype("int64"): "LongStorage",
    np.dtype("int32"): "IntStorage",
}


def write_torch_zip(path: str | os.PathLike, tree: dict) -> None:
    """Write `tree` (nested dicts with str keys; leaves numpy arrays, str or int) as a torch.save
    zip file, atomically."""
    storages: list[np.ndarray] = []
    records = [("data.pkl", pickle_tree(tree, storages)), (".format_version", b"1"),
               (".storage_alignment", str(ALIGNMENT).encode()), ("byteorder", b"little")]
    records += [(f"data/{key}", array.tobytes()) for key, array in enumerate(storages)]
    records.append(("version", FORMAT_VERSION))
    with atomic_open(path, "wb") as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, data in records:
                info = zipfile.ZipInfo(f"{ARCHIVE}/{name}", date_time=ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_STORED
                header = LOCAL_HEADER + len(info.filename.encode())
                if len(data) * 1.05 > zipfile.ZIP64_LIMIT:  # zipfile's own rule for adding its zip64 field
                    header += ZIP64_EXTRA
                info.extra = alignment_padding(handle.tell() + header)
                archive.writestr(info, data)


def alignment_padding(data_start: int) -> bytes:
    """An "FB" extra field that moves data starting at `data_start` to the next multiple of ALIGNMENT."""
    pad = -(data_start + 4) % ALIGNMENT
    return PADDING_ID + struct.pack("<H", pad) + b"Z" * pad


def pickle_tree(tree: dict, storages: list[np.ndarray]) -> bytes:
    """The protocol-2 pickle torch.save writes for `tree`; each array's data is appended to
    `storages` (little-endian, C order) and named by its index there."""
    out = bytearray(pickle.PROTO + b"\x02")
    _emit(out, tree, storages)
    out += pickle.STOP
    return bytes(out)


def _emit(out: bytearray, obj, storages: list[np.ndarray]) -> None:
    if isinstance(obj, dict):
        out += pickle.EMPTY_DICT
        if obj:
            out += pickle.MARK
            for key, value in obj.items():
                if not isinstance(key, str):
                    raise TypeError(f"dict keys must be str, got {key!r}")
                _emit(out, key, storages)
                _emit(out, value, storages)
            out += pickle.SETITEMS
    elif isinstance(obj, np.ndarray):
        _emit_tensor(out, obj, storages)
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        out += pickle.BINUNICODE + struct.pack("<I", len(data)) + data
    elif isinstance(obj, int) and not isinstance(obj, bool) and obj >= 0:
        _emit_int(out, obj)
    else:
        raise TypeError(f"cannot write {type(obj).__name__} into a torch file")


def _emit_int(out: bytearray, value: int) -> None:
    if value < 256:
        out += pickle.BININT1 + bytes([value])
    elif value < 65536:
        out += pickle.BININT2 + struct.pack("<H", value)
    elif value < 2**31:
        out += pickle.BININT + struct.pack("<i", value)
    else:
        data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        out += pickle.LONG1 + bytes([len(data)]) + data


def _emit_global(out: bytearray, module: str, name: str) -> None:
    out += pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _emit_int_tuple(out: bytearray, values: tuple[int, ...]) -> None:
    if not values:
        out += pickle.EMPTY_TUPLE
        return
    out += pickle.MARK
    for value in values:
        _emit_int(out, value)
    out += pickle.TUPLE


def _emit_tensor(out: bytearray, array: np.ndarray, storages: list[np.ndarray]) -> None:
    """`_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())` over a new storage."""
    native = array.dtype.newbyteorder("=")
    if native not in STORAGE_CLASSES:
        raise TypeError(f"cannot write a {array.dtype} tensor into a torch file "
                        f"(supported: {', '.join(map(str, STORAGE_CLASSES))})")
    data = np.ascontiguousarray(array, dtype=native.newbyteorder("<"))
    key = len(storages)
    storages.append(data)
    shape = tuple(int(n) for n in array.shape)
    strides = tuple(int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(len(shape)))
    _emit_global(out, "torch._utils", "_rebuild_tensor_v2")
    out += pickle.MARK
    out += pickle.MARK  # the persistent id of the storage
    _emit(out, "storage", storages)
    _emit_global(out, "torch", STORAGE_CLASSES[native])
    _emit(out, str(key), storages)
    _emit(out, "cpu", storages)
    _emit_int(out, int(data.size))
    out += pickle.TUPLE + pickle.BINPERSID
    _emit_int(out, 0)  # storage offset
    _emit_int_tuple(out, shape)
    _emit_int_tuple(out, strides)
    out += pickle.NEWFALSE  # requires_grad
    _emit_global(out, "collections", "OrderedDict")
    out += pickle.EMPTY_TUPLE + pickle.REDUCE  # backward hooks: an empty OrderedDict
    out += pickle.TUPLE + pickle.REDUCE
