"""The legacy .pth reader: exact arrays from a hand-made file, and no code runs from a pickle."""

from __future__ import annotations

import os
import pickle
import pickletools
import zipfile
from pathlib import Path

import numpy as np
import pytest

from convenet.models.torch_reader import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    TorchFileError,
    UnsafePickleError,
    read_legacy_torch_state_dict,
)

pytestmark = pytest.mark.quick

SYS_INFO = {"protocol_version": PROTOCOL_VERSION, "little_endian": True, "type_sizes": {}}


def _plain(obj: object) -> bytes:
    """Pickle opcodes for a plain value, without PROTO/STOP or memo, to splice into a stream."""
    return pickletools.optimize(pickle.dumps(obj, protocol=2))[2:-1]


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def _tensor(storage_class: str, key: str, numel: int, offset: int, shape, strides) -> bytes:
    """Opcodes for what torch writes: _rebuild_tensor_v2(<persistent storage>, offset, ...)."""
    storage = (
        b"("
        + _plain("storage")
        + _global("torch", storage_class)
        + _plain(key)
        + _plain("cpu")
        + _plain(numel)
        + b"NtQ"  # no view; TUPLE; BINPERSID
    )
    hooks = _global("collections", "OrderedDict") + b")R"
    args = storage + _plain(offset) + _plain(tuple(shape)) + _plain(tuple(strides)) + b"\x89"
    return _global("torch._utils", "_rebuild_tensor_v2") + b"(" + args + hooks + b"tR"


def _legacy_file(path: Path, entries: list[tuple[str, bytes]], storages: dict) -> Path:
    """Write the five pickles and the raw storages the way torch < 1.6 did."""
    state = _global("collections", "OrderedDict") + b")R("
    state += b"".join(_plain(name) + tensor for name, tensor in entries)
    parts = [pickle.dumps(v, protocol=2) for v in (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO)]
    parts += [b"\x80\x02" + state + b"u.", pickle.dumps(list(storages), protocol=2)]
    for data in storages.values():
        parts += [
            len(data).to_bytes(8, "little"),
            data.astype(data.dtype.newbyteorder("<")).tobytes(),
        ]
    path.write_bytes(b"".join(parts))
    return path


@pytest.fixture()
def sample(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A file whose tensors share storages, use offsets and strides, and mix dtypes."""
    floats = np.arange(10, dtype=np.float32) * 0.5 - 1.0
    counts = np.array([7], dtype=np.int64)
    doubles = np.array([np.pi, -2.0], dtype=np.float64)
    entries = [
        ("conv.weight", _tensor("FloatStorage", "a", 10, 0, (2, 3), (3, 1))),
        ("conv.weight_t", _tensor("FloatStorage", "a", 10, 0, (3, 2), (1, 3))),
        ("bn.bias", _tensor("FloatStorage", "a", 10, 6, (4,), (1,))),
        ("bn.num_batches_tracked", _tensor("LongStorage", "b", 1, 0, (), ())),
        ("fc.bias", _tensor("DoubleStorage", "c", 2, 0, (2,), (1,))),
    ]
    path = _legacy_file(tmp_path / "sample.pth", entries, {"a": floats, "b": counts, "c": doubles})
    expected = {
        "conv.weight": floats[:6].reshape(2, 3),
        "conv.weight_t": floats[:6].reshape(2, 3).T,
        "bn.bias": floats[6:],
        "bn.num_batches_tracked": np.array(7, dtype=np.int64),
        "fc.bias": doubles,
    }
    return path, expected


def test_round_trip_gives_the_exact_arrays(sample) -> None:
    path, expected = sample
    state = read_legacy_torch_state_dict(path)
    assert list(state) == list(expected)
    for name, array in expected.items():
        assert state[name].dtype == array.dtype, name
        assert state[name].shape == array.shape, name
        np.testing.assert_array_equal(state[name], array)
    assert state["conv.weight"].flags.writeable  # a copy, not a view of the file buffer


class _Exploit:
    """What an attacker pickles: unpickling calls ``func(*args)``."""

    def __init__(self, func, *args) -> None:
        self.call = (func, args)

    def __reduce__(self):
        return self.call


@pytest.mark.parametrize("attack", ["os.system", "builtins.eval"])
def test_malicious_pickle_is_refused_before_it_runs(tmp_path: Path, attack: str) -> None:
    marker = tmp_path / "pwned"
    if attack == "os.system":
        payload = _Exploit(os.system, f"touch {marker}")
    else:
        payload = _Exploit(eval, f"open({str(marker)!r}, 'w').close()")
    header = b"".join(
        pickle.dumps(v, protocol=2) for v in (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO)
    )
    for name, data in {
        "state.pth": header + pickle.dumps(payload, protocol=2),
        "first.pth": pickle.dumps(payload, protocol=4),  # STACK_GLOBAL, as the very first pickle
    }.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(UnsafePickleError, match="refusing to load global") as caught:
            read_legacy_torch_state_dict(path)
        assert name in str(caught.value)
        assert not marker.exists()


def test_non_torch_files_get_a_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.pth"
    text.write_text("not a model at all\n")
    plain = tmp_path / "plain.pth"
    plain.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}, protocol=2))
    archive = tmp_path / "modern.pth"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("archive/data.pkl", b"")
    for path, reason in [(text, "not a legacy"), (plain, "magic"), (archive, "zip")]:
        with pytest.raises(TorchFileError, match=reason) as caught:
            read_legacy_torch_state_dict(path)
        assert path.name in str(caught.value)


@pytest.mark.parametrize("keep", [0.3, 0.999])  # cut inside the pickles, and inside the data
def test_truncated_file_names_the_file(sample, keep: float) -> None:
    path, _ = sample
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(TorchFileError, match="truncated") as caught:
        read_legacy_torch_state_dict(path)
    assert "sample.pth" in str(caught.value)
