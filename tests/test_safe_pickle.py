"""The restricted unpickler: weights load, and any file that would run code is refused unrun.

PyTorch files are written without torch by tests/helpers.py (`write_torch_zip`,
`write_torch_legacy`): a pickler that emits the same globals and persistent ids `torch.save` does,
in its zip layout or its legacy stream layout.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sr_train.weights import safe_pickle
from srdata.errors import UserError
from helpers import BF16, Global, View, payloads, storage_of, torch_pickle, weights_with, write_torch_legacy, write_torch_zip

# --------------------------------------------------------------------------------------------
# Plain pickles (PaddleGAN .pdparams)


def load_plain(folder: Path, data: bytes, name: str = "x.pdparams"):
    """Write `data` as a file and read it back with `load_file`, which must see a plain pickle."""
    path = folder / name
    path.write_bytes(data)
    kind, tree = safe_pickle.load_file(path)
    assert kind == "pickle"
    return tree


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_arrays_and_containers_load_at_every_protocol(tmp_path, protocol):
    tree = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.float32(2.5), "c": [1, 2.0, "x"],
            "d": (np.zeros(0, np.int64), b"raw", b""), "e": {"nested": np.eye(2, dtype=np.float64)},
            "f": collections.OrderedDict(k=np.array([True, False])), "g": {1, 2}, "h": frozenset({3}),
            "i": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3))}
    loaded = load_plain(tmp_path, pickle.dumps(tree, protocol=protocol))
    assert loaded.keys() == tree.keys()
    for key in ("a", "e", "f", "i"):
        expected, got = (tree[key], loaded[key]) if key in "ai" else (next(iter(tree[key].values())),
                                                                      next(iter(loaded[key].values())))
        assert got.dtype == expected.dtype and np.array_equal(got, expected)
    assert loaded["b"] == np.float32(2.5) and loaded["c"] == [1, 2.0, "x"]
    assert loaded["d"][1:] == (b"raw", b"") and loaded["g"] == {1, 2} and loaded["h"] == frozenset({3})


def test_python2_style_pickle_of_a_numpy_array_loads(tmp_path):
    """Python 2 (old PaddleGAN) pickles: `numpy.core` paths, `__builtin__`, array bytes as a py2 str."""
    raw = np.array([1.5, -2.0], "<f4").tobytes()
    data = (
        b"\x80\x02}(U\x01w"  # {'w':
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
        b"(K\x01K\x02\x85cnumpy\ndtype\nU\x02f4\x89\x88\x87R"  # state: 1, (2,), dtype('f4') ...
        b"(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # ... with its own state
        b"\x89U" + bytes([len(raw)]) + raw + b"tb"  # not Fortran, the raw bytes as a py2 str
        b"U\x01sc__builtin__\nset\n]K\x01a\x85Ru."  # 's': set([1])}
    )
    loaded = load_plain(tmp_path, data, "py2.pdparams")
    assert loaded["w"].dtype == np.float32 and np.array_equal(loaded["w"], [1.5, -2.0])
    assert loaded["s"] == {1}


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.Popen"])
@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_pdparams_is_refused_and_never_runs(tmp_path, name, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps(weights_with(payloads(marker)[name]), protocol=protocol))
    with pytest.raises(UserError) as info:
        safe_pickle.load_file(path)
    message = str(info.value)
    assert str(path) in message and "refused" in message
    assert f".{name.rsplit('.', 1)[1]}'" in message  # names the global (os.system pickles as posix.system)
    assert not marker.exists()
    # the same bytes through plain pickle really would have run the payload
    pickle.loads(path.read_bytes())
    if name == "subprocess.Popen":
        _wait_for(marker)
    assert marker.exists()


def _wait_for(path: Path) -> None:
    import time

    for _ in range(200):
        if path.exists():
            return
        time.sleep(0.01)


@pytest.mark.parametrize("global_line", [b"c__builtin__\neval\n", b"cposix\nsystem\n", b"cbuiltins\ngetattr\n",
                                         b"cnumpy\nload\n", b"ccopyreg\n_reconstructor\n",
                                         b"ctorch._utils\n_rebuild_tensor_v2\n"])
def test_any_other_global_is_refused_when_named(tmp_path, global_line):
    """Refusal happens at the GLOBAL opcode itself, before any REDUCE could call it."""
    data = b"\x80\x02" + global_line + b"X\x01\x00\x00\x00x\x85R."
    with pytest.raises(UserError, match="refused to load"):
        load_plain(tmp_path, data)


def test_codecs_encode_only_turns_latin1_text_back_into_bytes(tmp_path):
    ok = b"\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00ab" + b"X\x06\x00\x00\x00latin1\x86R."
    assert load_plain(tmp_path, ok, "ok.pdparams") == b"ab"
    other_codec = ok.replace(b"X\x06\x00\x00\x00latin1", b"X\x05\x00\x00\x00rot13")
    with pytest.raises(UserError, match="cannot read"):
        load_plain(tmp_path, other_codec)


def test_plain_pickle_with_persistent_ids_is_refused(tmp_path):
    data = b"\x80\x02X\x03\x00\x00\x00keyQ."  # BINPERSID 'key'
    with pytest.raises(UserError, match="persistent"):
        load_plain(tmp_path, data)


@pytest.mark.parametrize("data", [b"", b"\x80\x02}q\x00(X", b"not a pickle at all"])
def test_damaged_pickle_is_a_user_error(tmp_path, data):
    path = tmp_path / "broken.pdparams"
    path.write_bytes(data)
    with pytest.raises(UserError, match="broken.pdparams"):
        safe_pickle.load_file(path)


# --------------------------------------------------------------------------------------------
# PyTorch zip and legacy files


def _torch_tree():
    rng = np.random.default_rng(0)
    shared = storage_of(np.arange(20, dtype=np.float32))
    return {
        "params_ema": collections.OrderedDict([
            ("conv.weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
            ("conv.bias", rng.standard_normal(4).astype(np.float16)),
            ("bf", BF16(np.array([1.0, -2.5, 0.15625, 3e38], np.float32))),
            ("steps", np.array(7, np.int64)),
            ("every_other", View(shared, 2, (3,), (2,))),  # elements 2, 4, 6
            ("transposed", View(shared, 0, (4, 5), (1, 4))),
            ("empty", np.zeros((0, 3), np.float32)),
        ]),
        "iter": 100,
    }


def _check_torch_tree(tree):
    expected = _torch_tree()["params_ema"]
    got = tree["params_ema"]
    assert isinstance(got, collections.OrderedDict) and list(got) == list(expected)
    assert np.array_equal(got["conv.weight"], expected["conv.weight"])
    assert got["conv.bias"].dtype == np.float16 and np.array_equal(got["conv.bias"], expected["conv.bias"])
    # bfloat16 keeps the top 16 bits of float32: exact for these values except 3e38's low bits
    assert got["bf"].dtype == np.float32
    assert np.array_equal(got["bf"][:3], [1.0, -2.5, 0.15625]) and abs(got["bf"][3] / 3e38 - 1) < 1e-2
    assert got["steps"].dtype == np.int64 and got["steps"].shape == () and got["steps"] == 7
    assert np.array_equal(got["every_other"], [2, 4, 6])
    assert np.array_equal(got["transposed"], np.arange(20, dtype=np.float32).reshape(5, 4).T)
    assert got["empty"].shape == (0, 3)
    assert tree["iter"] == 100


@pytest.mark.parametrize("prefix", ["archive", "RealESRGAN_x4plus_anime_6B"])
def test_torch_zip_is_read_without_torch(tmp_path, prefix):
    path = write_torch_zip(tmp_path / "w.pth", _torch_tree(), prefix=prefix)
    kind, tree = safe_pickle.load_file(path)
    assert kind == "torch"
    _check_torch_tree(tree)


def test_torch_legacy_file_is_read_without_torch(tmp_path):
    path = write_torch_legacy(tmp_path / "w.pth", _torch_tree())
    kind, tree = safe_pickle.load_file(path)
    assert kind == "torch"
    _check_torch_tree(tree)


def test_parameters_and_old_rebuild_function_are_read(tmp_path):
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    for rebuild in ("_rebuild_tensor", "_rebuild_tensor_v2"):
        path = write_torch_zip(tmp_path / f"{rebuild}.pth", {"w": weight})
        data = zipfile.ZipFile(path).read("archive/data.pkl")
        if rebuild == "_rebuild_tensor":  # 4-argument form of torch < 1.0
            data, _ = torch_pickle({"w": weight}, rebuild=rebuild)
        _, tree = safe_pickle.load_file(write_torch_zip(tmp_path / f"{rebuild}2.pth", {"w": weight}, data_pkl=data))
        assert np.array_equal(tree["w"], weight)
    # a Parameter: torch._utils._rebuild_parameter(tensor, requires_grad, hooks)
    pickled, _ = torch_pickle({"p": _ParameterOf(weight)})
    _, tree = safe_pickle.load_file(write_torch_zip(tmp_path / "param.pth", {"p": weight}, data_pkl=pickled))
    assert np.array_equal(tree["p"], weight)


class _ParameterOf:
    def __init__(self, array):
        self.array = array

    def __reduce__(self):
        return Global("torch._utils", "_rebuild_parameter"), (self.array, True, collections.OrderedDict())


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.Popen"])
def test_malicious_torch_zip_is_refused_and_never_runs(tmp_path, name):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(weights_with(payloads(marker)[name]), protocol=2)
    path = write_torch_zip(tmp_path / "evil.pth", {"w": np.ones(2, np.float32)}, data_pkl=evil)
    with pytest.raises(UserError, match="refused to load") as info:
        safe_pickle.load_file(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.Popen"])
def test_malicious_torch_legacy_file_is_refused_and_never_runs(tmp_path, name):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(weights_with(payloads(marker)[name]), protocol=2)
    path = write_torch_legacy(tmp_path / "evil.pth", {"w": np.ones(2, np.float32)}, main_pickle=evil)
    with pytest.raises(UserError, match="refused to load"):
        safe_pickle.load_file(path)
    assert not marker.exists()


def test_tensor_reaching_past_its_storage_is_refused(tmp_path):
    """as_strided on a hostile stride would read memory outside the file's data."""
    base = storage_of(np.zeros(4, np.float32))
    path = write_torch_zip(tmp_path / "oob.pth", {"w": View(base, 0, (2, 3), (3, 1000))})
    with pytest.raises(UserError, match="oob.pth"):
        safe_pickle.load_file(path)


def test_truncated_storage_and_missing_record_are_user_errors(tmp_path):
    path = write_torch_zip(tmp_path / "w.pth", {"w": np.ones(8, np.float32)})
    short = tmp_path / "short.pth"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(short, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            dst.writestr(item, data[:8] if item == "archive/data/0" else data)
    with pytest.raises(UserError, match="truncated"):
        safe_pickle.load_file(short)
    missing = tmp_path / "missing.pth"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(missing, "w") as dst:
        for item in src.namelist():
            if item != "archive/data/0":
                dst.writestr(item, src.read(item))
    with pytest.raises(UserError, match="missing"):
        safe_pickle.load_file(missing)


def test_zip_that_is_not_a_torch_file_is_a_user_error(tmp_path):
    path = tmp_path / "other.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(UserError, match="not a PyTorch checkpoint"):
        safe_pickle.load_file(path)


def test_absurdly_nested_torch_file_is_a_user_error(tmp_path):
    pickled, _ = torch_pickle({"w": np.ones(1, np.float32)})
    deep = b"\x80\x02" + b"]" * 5000 + pickled[2:-1] + b"a" * 5000 + b"."  # [[[...{'w': tensor}...]]]
    path = write_torch_zip(tmp_path / "deep.pth", {"w": np.ones(1, np.float32)}, data_pkl=deep)
    with pytest.raises(UserError, match="deep.pth"):
        safe_pickle.load_file(path)
