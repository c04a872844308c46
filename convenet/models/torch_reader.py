"""Read legacy (pre-1.6, non-zip) PyTorch ``.pth`` state dicts into NumPy, without torch.

A ``.pth`` file is pickle, and unpickling runs whatever globals the file names. So the
unpickler here resolves only the handful of names a state dict needs, each to a local
NumPy stand-in, and refuses everything else before it can run.

Legacy layout: five pickles in a row (magic number, protocol version, system info, the
object whose tensors point at storages by persistent id, the list of storage keys), then
for each key in that list an 8-byte little-endian element count and the raw data.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# Legacy storage classes and the little-endian dtypes of their raw bytes.
STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class UnsafePickleError(ValueError):
    """The pickle names a global outside the allow-list (it might run code)."""


class TorchFileError(ValueError):
    """The file is not a readable legacy PyTorch file (wrong format, truncated, corrupt)."""


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype


@dataclass
class _StorageRef:
    """A storage named by the pickle; its data arrives after the pickles are read."""

    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    view_offset: int = 0


def _rebuild_tensor_v2(storage: Any, offset: int, shape: Any, strides: Any, *_: Any) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: remember where the tensor lives."""
    if not (isinstance(storage, tuple) and isinstance(storage[0], _StorageRef)):
        raise TorchFileError(f"tensor refers to {type(storage).__name__}, not a storage")
    root, view_offset = storage
    return _TensorRef(root, int(offset), tuple(shape), tuple(strides), view_offset)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    }
    for name, dtype in STORAGE_DTYPES.items():
        allowed[("torch", name)] = _StorageType(name, dtype)
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals; persistent ids become storage references."""

    _ALLOWED = _allowed_globals()

    def __init__(self, file: io.BufferedReader, storages: dict[str, _StorageRef]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name}: not part of a tensor state dict"
            ) from None

    def persistent_load(self, pid: Any) -> tuple[_StorageRef, int]:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise TorchFileError(f"unknown persistent id {pid!r}")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType):
            raise TorchFileError(f"persistent id names {storage_type!r}, not a storage type")
        root = self._storages.setdefault(key, _StorageRef(key, storage_type.dtype, int(numel)))
        if view is None:
            return root, 0
        _view_key, view_offset, _view_size = view
        return root, int(view_offset)


def _read_storage(file: io.BufferedReader, ref: _StorageRef) -> np.ndarray:
    header = file.read(8)
    if len(header) < 8:
        raise TorchFileError(f"file is truncated: storage {ref.key} header cut short")
    count = int.from_bytes(header, "little")
    if count != ref.numel:
        raise TorchFileError(f"storage {ref.key} holds {count} values, pickle says {ref.numel}")
    nbytes = count * ref.dtype.itemsize
    if nbytes > os.fstat(file.fileno()).st_size - file.tell():  # never allocate past the end
        raise TorchFileError(f"file is truncated: storage {ref.key} data cut short")
    return np.frombuffer(file.read(nbytes), dtype=ref.dtype)


def _materialise(tensor: _TensorRef) -> np.ndarray:
    """Copy the tensor's (possibly strided) window out of its storage, bounds-checked."""
    data = tensor.storage.data
    assert data is not None  # every storage is read before tensors are materialised
    start = tensor.view_offset + tensor.offset
    extent = sum((n - 1) * s for n, s in zip(tensor.shape, tensor.strides, strict=True))
    if any(n == 0 for n in tensor.shape):
        return np.zeros(tensor.shape, dtype=data.dtype)
    if start < 0 or min(tensor.strides, default=0) < 0 or start + extent >= data.size:
        raise TorchFileError(f"tensor of shape {tensor.shape} reaches outside its storage")
    item = data.dtype.itemsize
    window = np.lib.stride_tricks.as_strided(
        data[start:], shape=tensor.shape, strides=[s * item for s in tensor.strides]
    )
    return np.array(window)  # an own, writable copy


def _load(file: io.BufferedReader) -> dict[str, np.ndarray]:
    if file.peek(4)[:4] == b"PK\x03\x04":
        raise TorchFileError("zip-format (PyTorch >= 1.6) files are not supported, only legacy")
    storages: dict[str, _StorageRef] = {}

    def unpickle() -> Any:
        return _RestrictedUnpickler(file, storages).load()

    if unpickle() != MAGIC_NUMBER:
        raise TorchFileError("no PyTorch magic number at the start")
    if unpickle() != PROTOCOL_VERSION:
        raise TorchFileError("unsupported PyTorch protocol version")
    sys_info = unpickle()
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
        raise TorchFileError("only little-endian files are supported")
    state = unpickle()
    keys = unpickle()
    if not isinstance(state, dict):
        raise TorchFileError(f"holds a {type(state).__name__}, not a state dict")
    if not isinstance(keys, list) or set(keys) != set(storages):
        raise TorchFileError("storage key list does not match the storages the tensors use")
    for key in keys:
        storages[key].data = _read_storage(file, storages[key])
    result = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise TorchFileError(f"entry {name!r} is a {type(value).__name__}, not a tensor")
        result[str(name)] = _materialise(value)
    return result


def read_legacy_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Tensors of a legacy ``.pth`` state dict as NumPy arrays, keyed by parameter name."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            return _load(file)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except TorchFileError as exc:
        raise TorchFileError(f"{path}: {exc}") from None
    except EOFError:
        raise TorchFileError(f"{path}: file is empty or truncated (a pickle is missing)") from None
    except (pickle.UnpicklingError, ValueError, TypeError, IndexError, AttributeError) as exc:
        if "truncated" in str(exc):
            raise TorchFileError(f"{path}: file is truncated (inside a pickle)") from None
        raise TorchFileError(f"{path}: not a legacy PyTorch file ({exc})") from None
