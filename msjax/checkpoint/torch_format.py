"""PyTorch checkpoints to MindSpore names: a safe reader for ``torch.save`` files and a rename table.

``torch.save`` writes a zip archive: ``<root>/data.pkl`` (a pickle of the state dict whose tensors
point at storages by key) and ``<root>/data/<key>`` (each storage's raw little-endian bytes).
The pickle is read by an unpickler that resolves only the handful of globals a state dict needs
and refuses every other one, so a hostile file cannot run code. torch itself is not needed.

Layouts need no change: MindSpore, like PyTorch, stores Conv2d weights OIHW and Dense weights
(out, in). Only names differ, and only for normalisation layers: that lives in ``RENAMES``.
"""
from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict

import ml_dtypes
import numpy as np

from msjax.errors import CheckpointError

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}

#: suffix renames for normalisation layers (a layer is one when it has running statistics)
RENAMES = {"running_mean": "moving_mean", "running_var": "moving_variance", "weight": "gamma", "bias": "beta"}
#: torch-only bookkeeping that MindSpore has no parameter for
DROPPED_SUFFIXES = ("num_batches_tracked",)


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage, offset, size, stride, *unused):
    size, stride = tuple(size), tuple(stride)
    if not size:
        return storage[offset:offset + 1].copy().reshape(())
    itemsize = storage.dtype.itemsize
    needed = offset + 1 + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset
    if needed > storage.size:
        raise ValueError(f"tensor of size {size} at offset {offset} runs past its storage ({storage.size})")
    view = np.lib.stride_tricks.as_strided(storage[offset:], size, tuple(s * itemsize for s in stride))
    return np.ascontiguousarray(view)


def _rebuild_parameter(data, requires_grad=True, backward_hooks=None, *unused):
    return data


class _StateDictUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    }

    def __init__(self, file, archive, root, path):
        super().__init__(file)
        self.archive, self.root, self.path = archive, root, path
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(f"refusing to unpickle {module}.{name}: only PyTorch state dicts "
                              f"(tensors in dicts) can be converted", file=self.path)

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == "storage"):
            raise CheckpointError(f"unexpected persistent id {saved_id!r}", file=self.path)
        storage_type, key = saved_id[1], saved_id[2]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"unsupported storage type {storage_type!r}", file=self.path)
        if key not in self.storages:
            try:
                raw = self.archive.read(f"{self.root}/data/{key}")
            except KeyError:
                raise CheckpointError(f"storage {key} is missing from the archive", file=self.path) from None
            if len(raw) % storage_type.dtype.itemsize:
                raise CheckpointError(f"storage {key} has {len(raw)} bytes, not a multiple of "
                                      f"{storage_type.dtype.itemsize} ({storage_type.name})", file=self.path)
            self.storages[key] = np.frombuffer(raw, storage_type.dtype)
        return self.storages[key]


def _find_state_dict(obj):
    """The dict of arrays inside what torch.save wrote (plain, or under 'state_dict'/'model')."""
    if isinstance(obj, dict) and obj and all(isinstance(v, np.ndarray) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            if key in obj:
                return _find_state_dict(obj[key])
        arrays = {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
        if arrays:
            return arrays
    return None


def read_torch_state_dict(path) -> "OrderedDict[str, np.ndarray]":
    """Read a ``torch.save`` zip file's state dict as numpy arrays, without torch or unsafe pickle.

    >>> weights = read_torch_state_dict("resnet50.pth")        # doctest: +SKIP
    """
    path = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"not a PyTorch zip checkpoint ({err}); re-save it with torch.save "
                              f"(the legacy non-zip format is not supported)", file=path) from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError("no data.pkl in the archive: not a torch.save file", file=path)
        root = pickles[0][: -len("/data.pkl")]
        byteorder = f"{root}/byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise CheckpointError("big-endian PyTorch checkpoints are not supported", file=path)
        with archive.open(pickles[0]) as f:
            try:
                obj = _StateDictUnpickler(f, archive, root, path).load()
            except CheckpointError:
                raise
            except Exception as err:  # malformed pickle: report it as a bad file
                raise CheckpointError(f"cannot read the state dict: {err}", file=path) from None
    state = _find_state_dict(obj)
    if state is None:
        raise CheckpointError("the file holds no tensors in a dict (expected a state_dict)", file=path)
    return OrderedDict((str(k), v) for k, v in state.items())


def torch_to_mindspore_names(names, renames=None):
    """Map PyTorch state-dict names to MindSpore names; dropped names map to None.

    A layer counts as a normalisation layer when it has ``running_mean``; its suffixes are renamed
    by ``renames`` (default ``RENAMES``). Everything else keeps its name.

    >>> torch_to_mindspore_names(["bn1.weight", "bn1.running_mean", "fc.weight"])
    OrderedDict({'bn1.weight': 'bn1.gamma', 'bn1.running_mean': 'bn1.moving_mean', 'fc.weight': 'fc.weight'})
    """
    renames = RENAMES if renames is None else renames
    names = list(names)
    norm_layers = {n.rsplit(".", 1)[0] for n in names if n.endswith(".running_mean") or n == "running_mean"}
    out = OrderedDict()
    for name in names:
        layer, _, suffix = name.rpartition(".")
        if suffix in DROPPED_SUFFIXES:
            out[name] = None
        elif layer in norm_layers and suffix in renames:
            out[name] = f"{layer}.{renames[suffix]}" if layer else renames[suffix]
        else:
            out[name] = name
    return out


def convert_torch_checkpoint(src, dst, *, renames=None, **save_kwargs):
    """Convert a PyTorch state dict file to a MindSpore .ckpt; return ``{torch_name: ms_name}``.

    >>> convert_torch_checkpoint("resnet50.pth", "resnet50.ckpt")   # doctest: +SKIP
    """
    from msjax.checkpoint import save_checkpoint

    state = read_torch_state_dict(src)
    mapping = torch_to_mindspore_names(state, renames)
    records = [{"name": ms_name, "data": state[t_name]} for t_name, ms_name in mapping.items() if ms_name]
    save_checkpoint(records, str(dst), **save_kwargs)
    return mapping
