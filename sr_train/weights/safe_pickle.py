"""Read pickled weights (PaddleGAN `.pdparams`, PyTorch `.pth`) without running code hidden in them.

A pickle is a small program: its GLOBAL/REDUCE opcodes import any callable and call it, so
`pickle.load` on a downloaded file can run `os.system`. Weight files only ever need a handful of
callables (numpy's array rebuilders, PyTorch's tensor rebuilders, OrderedDict), so the unpickler
below resolves exactly those and refuses everything else *before* anything is called: the
refusal happens in `find_class`, when the name is looked up, so a payload never runs.

PyTorch tensors are not rebuilt with torch (which srkit does not depend on): `torch.save` writes a
zip whose `*/data.pkl` refers to raw storages `*/data/KEY` through persistent ids, and the
(pre-1.6) legacy format appends the raw storages after the pickle. Both are read here into numpy.

Only foreign files come here: srkit's own weights and resume states are safetensors + JSON and
are never pickled (`sr_train.weights`, `sr_train.checkpoint`).
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from srdata.errors import UserError

# Errors a damaged or truncated pickle can raise from inside the unpickler.
_BROKEN_PICKLE = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    OverflowError,
    MemoryError,
    struct.error,
    UnicodeDecodeError,
)

TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_LEGACY_PROTOCOL = 1001


def _refusal(source: str, module: str, name: str) -> UserError:
    return UserError(
        f"{source}: refused to load: the file references the Python global '{module}.{name}', "
        "which weight files never need (unpickling it could run code on this machine). "
        "Only arrays, tensors and plain containers are accepted; re-save the weights as a plain "
        "state dict, or convert them with a tool you trust to .safetensors"
    )


# ---------------------------------------------------------------------------------------------
# Allowed globals


def _only_latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for `_codecs.encode`: protocol-2 pickles store bytes as latin-1 text this way.

    Any other codec is refused, so the call can only turn text back into the bytes it came from.
    """
    if not isinstance(text, str) or encoding.replace("-", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"_codecs.encode called with {encoding!r}, not latin-1 text")
    return text.encode("latin-1")


def _only_small_bytes(*args: Any) -> bytes:
    """Stand-in for `bytes`: protocol-2 pickles write `bytes()` for an empty bytes object."""
    if args and not isinstance(args[0], (bytes, bytearray, str)):
        raise pickle.UnpicklingError("bytes() called with a non-bytes argument")
    return bytes(*args)


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """numpy's array/scalar rebuilders under every module path numpy 1.x and 2.x pickle them as."""
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float32(0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


def _plain_globals() -> dict[tuple[str, str], Any]:
    """Containers and the protocol-2 bytes helpers (Python 2 pickles spell builtins `__builtin__`)."""
    import collections

    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _only_latin1_encode,
    }
    for builtins in ("builtins", "__builtin__"):
        allowed[(builtins, "set")] = set
        allowed[(builtins, "frozenset")] = frozenset
        allowed[(builtins, "tuple")] = tuple  # Paddle pickles a tensor as tuple((name, array))
        allowed[(builtins, "bytes")] = _only_small_bytes
    return allowed


ARRAY_GLOBALS = {**_numpy_globals(), **_plain_globals()}


class _RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only `allowed` globals and refuses any other before it is used."""

    def __init__(
        self,
        file: BinaryIO,
        source: str,
        allowed: dict[tuple[str, str], Any],
        persistent_load: Callable[[Any], Any] | None = None,
    ):
        # latin-1 lets numpy arrays pickled by Python 2 (raw data as `str`) load unchanged.
        super().__init__(file, encoding="latin1")
        self._source = source
        self._allowed = allowed
        self._load_persistent = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except (KeyError, TypeError):
            raise _refusal(self._source, str(module), str(name)) from None

    def persistent_load(self, pid: Any) -> Any:
        if self._load_persistent is None:
            raise UserError(
                f"{self._source}: refused to load: the pickle refers to external objects "
                "(persistent ids), which a plain weights pickle never does"
            )
        return self._load_persistent(pid)


def _unpickle(
    file: BinaryIO,
    source: str,
    allowed: dict[tuple[str, str], Any] = ARRAY_GLOBALS,
    persistent_load: Callable[[Any], Any] | None = None,
) -> Any:
    """One pickle from `file` through the restricted unpickler; a broken file is a UserError."""
    try:
        return _RestrictedUnpickler(file, source, allowed, persistent_load).load()
    except UserError:
        raise
    except _BROKEN_PICKLE as exc:
        raise UserError(
            f"{source}: cannot read it as a pickle ({type(exc).__name__}: {exc}); "
            "the file is damaged or not a weights file"
        ) from None


# ---------------------------------------------------------------------------------------------
# PyTorch files without torch


# numpy dtype of each storage class PyTorch pickles (torch.<Name>Storage); bfloat16 has no
# numpy dtype: it is read as uint16 and widened to float32 (its top 16 bits).
_TORCH_STORAGE_DTYPES = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "bf16",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "UntypedStorage": "u1",
    "ComplexFloatStorage": "c8",
    "ComplexDoubleStorage": "c16",
}


@dataclass(frozen=True)
class _StorageType:
    """What `torch.FloatStorage` & co. resolve to: just the element type."""

    name: str
    code: str

    @property
    def itemsize(self) -> int:
        return 2 if self.code == "bf16" else np.dtype(self.code).itemsize


@dataclass(frozen=True)
class _StorageRef:
    """A storage named by a persistent id: `numel` elements from element `offset` of record `key`."""

    key: str
    kind: _StorageType
    offset: int
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """A tensor over a storage, materialised into a numpy array once the storages are readable."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _as_int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise pickle.UnpicklingError(f"tensor {what} {value!r} is not a tuple of non-negative ints")
    return tuple(value)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *_ignored: Any) -> _TensorRef:
    """Stand-in for torch._utils._rebuild_tensor(_v2): records where the tensor's data is.

    requires_grad, backward hooks and metadata do not matter for weights and are dropped.
    """
    if not isinstance(storage, _StorageRef) or not isinstance(storage_offset, int) or storage_offset < 0:
        raise pickle.UnpicklingError("tensor rebuilt from something that is not a storage")
    size = _as_int_tuple(size, "size")
    stride = _as_int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"tensor size {size} and stride {stride} differ in length")
    if all(size):  # a tensor with no elements reads nothing
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.numel:
            raise pickle.UnpicklingError(
                f"tensor reaches element {last} of a storage of {storage.numel} elements"
            )
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, *_ignored: Any) -> Any:
    """Stand-in for torch._utils._rebuild_parameter(_with_state): a Parameter is its data."""
    if not isinstance(data, _TensorRef):
        raise pickle.UnpicklingError("parameter rebuilt from something that is not a tensor")
    return data


@dataclass(frozen=True)
class _TensorClass:
    name: str


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, _state: Any = None) -> Any:
    """Stand-in for torch._tensor._rebuild_from_type_v2 (a Tensor or Parameter with Python state)."""
    if func not in (_rebuild_tensor, _rebuild_parameter) or not isinstance(new_type, _TensorClass):
        raise pickle.UnpicklingError("_rebuild_from_type_v2 with an unexpected rebuild function or type")
    return func(*args)


def _torch_globals() -> dict[tuple[str, str], Any]:
    allowed = dict(ARRAY_GLOBALS)
    for name, code in _TORCH_STORAGE_DTYPES.items():
        allowed[("torch", name)] = _StorageType(name, code)
    allowed[("torch.storage", "UntypedStorage")] = _StorageType("UntypedStorage", "u1")
    allowed[("torch._utils", "_rebuild_tensor")] = _rebuild_tensor
    allowed[("torch._utils", "_rebuild_tensor_v2")] = _rebuild_tensor
    allowed[("torch._utils", "_rebuild_parameter")] = _rebuild_parameter
    allowed[("torch._utils", "_rebuild_parameter_with_state")] = _rebuild_parameter
    allowed[("torch._tensor", "_rebuild_from_type_v2")] = _rebuild_from_type_v2
    allowed[("torch", "Tensor")] = _TensorClass("Tensor")
    allowed[("torch._tensor", "Tensor")] = _TensorClass("Tensor")
    allowed[("torch.nn.parameter", "Parameter")] = _TensorClass("Parameter")
    return allowed


TORCH_GLOBALS = _torch_globals()


def _storage_from_pid(pid: Any, legacy: bool) -> _StorageRef:
    """Turn a persistent id into a storage reference (nothing is read yet).

    zip format:    ('storage', storage_type, key, location, numel)
    legacy format: ('storage', storage_type, root_key, location, numel, view_metadata)
    """
    expected_len = 6 if legacy else 5
    if (
        not isinstance(pid, tuple)
        or len(pid) != expected_len
        or pid[0] != "storage"
        or not isinstance(pid[1], _StorageType)
        or not isinstance(pid[2], str)
        or not isinstance(pid[4], int)
    ):
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.120}")
    kind, key, numel = pid[1], pid[2], pid[4]
    offset = 0
    if legacy and pid[5] is not None:  # a view into a larger root storage
        _view_key, offset, numel = pid[5]
    return _StorageRef(key, kind, offset, numel)


def _decode_storage(raw: bytes, kind: _StorageType, big_endian: bool) -> np.ndarray:
    """Raw storage bytes -> 1-D numpy array (bfloat16 widened to float32, native byte order)."""
    order = ">" if big_endian else "<"
    if kind.code == "bf16":
        halves = np.frombuffer(raw, dtype=order + "u2", count=len(raw) // 2)
        return (halves.astype(np.uint32) << 16).view(np.float32)
    dtype = np.dtype(kind.code).newbyteorder(order) if np.dtype(kind.code).itemsize > 1 else np.dtype(kind.code)
    values = np.frombuffer(raw, dtype=dtype, count=len(raw) // dtype.itemsize)
    return values.astype(values.dtype.newbyteorder("="), copy=False)


def _materialise(obj: Any, storages: Callable[[_StorageRef], np.ndarray]) -> Any:
    """Replace every _TensorRef in nested dicts/lists/tuples by a numpy array (a copy)."""
    if isinstance(obj, _TensorRef):
        base = storages(obj.storage)
        if not all(obj.size):
            return np.zeros(obj.size, dtype=base.dtype)
        itemsize = base.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[obj.offset :], shape=obj.size, strides=tuple(s * itemsize for s in obj.stride)
        )
        return np.array(view, copy=True)
    if isinstance(obj, dict):
        rebuilt = type(obj)() if type(obj) is not dict else {}
        for key, value in obj.items():
            rebuilt[key] = _materialise(value, storages)
        return rebuilt
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(value, storages) for value in obj)
    return obj


def _materialise_all(tree: Any, storages: Callable[[_StorageRef], np.ndarray], source: str) -> Any:
    try:
        return _materialise(tree, storages)
    except RecursionError:
        raise UserError(f"{source}: nested too deeply to be a weights file") from None


def _storage_reader(
    read_raw: Callable[[str], bytes], big_endian: bool, source: str
) -> Callable[[_StorageRef], np.ndarray]:
    """Decode each storage record once; check it holds the elements the pickle claims."""
    decoded: dict[str, np.ndarray] = {}

    def storage(ref: _StorageRef) -> np.ndarray:
        if ref.key not in decoded:
            decoded[ref.key] = _decode_storage(read_raw(ref.key), ref.kind, big_endian)
        values = decoded[ref.key]
        if ref.offset + ref.numel > values.size:
            raise UserError(
                f"{source}: storage {ref.key} holds {values.size} values but the file uses "
                f"{ref.offset + ref.numel}: the file is truncated or damaged"
            )
        return values[ref.offset : ref.offset + ref.numel]

    return storage


def is_zip_file(path: str | Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def load_torch_zip(path: str | Path) -> Any:
    """Read a `torch.save` zip (PyTorch >= 1.6): tensors come back as numpy arrays.

    Layout: `PREFIX/data.pkl` (the pickle), `PREFIX/data/KEY` (raw storages),
    `PREFIX/byteorder` (absent in older files: little-endian).
    """
    source = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{source}: not a readable zip ({exc}); the file is damaged") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise UserError(
                f"{source}: a zip but not a PyTorch checkpoint (expected one 'NAME/data.pkl', "
                f"found {len(pickles)}); re-save it with torch.save"
            )
        prefix = pickles[0][: -len("data.pkl")]
        names = set(archive.namelist())
        if f"{prefix}constants.pkl" in names or any(name.startswith(f"{prefix}code/") for name in names):
            raise UserError(f"{source}: a TorchScript model (torch.jit.save), not a state dict: only weights "
                            "can be read; save them with torch.save(model.state_dict(), PATH)")
        big_endian = (
            f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() == b"big"
        )
        with archive.open(pickles[0]) as handle:
            tree = _unpickle(
                handle, source, TORCH_GLOBALS, lambda pid: _storage_from_pid(pid, legacy=False)
            )

        def read_raw(key: str) -> bytes:
            try:
                return archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise UserError(f"{source}: storage record '{prefix}data/{key}' is missing") from None

        return _materialise_all(tree, _storage_reader(read_raw, big_endian, source), source)


def load_torch_legacy(handle: BinaryIO, source: str) -> Any:
    """Read the pre-1.6 `torch.save` format; `handle` is positioned after the magic number.

    Layout: pickles of the protocol version, a sys-info dict and the object; a pickled list of
    storage keys; then per key an int64 element count and the raw elements.
    """
    protocol = _unpickle(handle, source)
    if protocol != TORCH_LEGACY_PROTOCOL:
        raise UserError(
            f"{source}: PyTorch legacy format version {protocol!r} is not supported; "
            "re-save it with a recent torch.save"
        )
    sys_info = _unpickle(handle, source)
    big_endian = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
    tree = _unpickle(handle, source, TORCH_GLOBALS, lambda pid: _storage_from_pid(pid, legacy=True))
    keys = _unpickle(handle, source)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise UserError(f"{source}: the storage key list is damaged")

    kinds = _storage_kinds(tree)
    raw: dict[str, bytes] = {}
    order = ">" if big_endian else "<"
    for key in keys:
        header = handle.read(8)
        if len(header) != 8 or key not in kinds:
            raise UserError(f"{source}: storage {key} is missing or unknown: the file is truncated")
        (count,) = struct.unpack(order + "q", header)
        nbytes = count * kinds[key].itemsize
        raw[key] = handle.read(nbytes)
        if count < 0 or len(raw[key]) != nbytes:
            raise UserError(f"{source}: storage {key} is truncated")

    def read_raw(key: str) -> bytes:
        if key not in raw:
            raise UserError(f"{source}: storage {key} is referenced but not stored")
        return raw[key]

    return _materialise_all(tree, _storage_reader(read_raw, big_endian, source), source)


def _storage_kinds(obj: Any) -> dict[str, _StorageType]:
    """The element type of each storage key referenced anywhere in `obj`."""
    found: dict[str, _StorageType] = {}
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, _TensorRef):
            found[item.storage.key] = item.storage.kind
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def load_file(path: str | Path) -> tuple[str, Any]:
    """Read a pickled weights file of any kind, restricted: ("torch", tree) or ("pickle", tree).

    A `torch.save` file (zip, or legacy: a pickled magic number first) comes back with its
    tensors as numpy arrays; anything else must be one plain pickle (e.g. a `.pdparams`).
    """
    path = Path(path)
    if is_zip_file(path):
        return "torch", load_torch_zip(path)
    with open(path, "rb") as handle:
        first = _unpickle(handle, str(path))
        if type(first) is int and first == TORCH_LEGACY_MAGIC:
            return "torch", load_torch_legacy(handle, str(path))
        return "pickle", first
