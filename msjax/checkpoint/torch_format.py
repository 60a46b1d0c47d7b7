"""PyTorch checkpoints to MindSpore names: a safe reader for ``torch.save`` files and a rename table.

``torch.save`` writes a zip archive: ``<root>/data.pkl`` (a pickle of the state dict whose tensors
point at storages by key) and ``<root>/data/<key>`` (each storage's raw little-endian bytes).

The reader trusts no file. data.pkl is read by a restricted pure-Python unpickler that resolves
only the handful of globals a state dict needs (so a file cannot run code) and refuses dict keys
and set items that are not scalars before anything hashes them (so no key can hang it). Every zip
entry, storage, size, stride and offset is checked against the bytes that back it before anything
is allocated, so what a file makes the reader hold stays in proportion to the file: stored entries
1:1, deflated ones at most deflate's 1032:1, copies of non-contiguous tensors at most
``COPY_FACTOR`` times the storages, the pickle at most ``MAX_PICKLE_BYTES``. A malformed file
raises ``CheckpointError`` naming the file and the cause. torch itself is not needed.

Layouts need no change: MindSpore, like PyTorch, stores Conv2d weights OIHW and Dense weights
(out, in). Only names differ, and only for normalisation layers: that lives in ``RENAMES``.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import re
import struct
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping

import ml_dtypes
import numpy as np

from msjax.common.untrusted import MAX_DIMS, reading
from msjax.errors import CheckpointError

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}

#: suffix renames for normalisation layers (which layers those are: ``torch_to_mindspore_names``)
RENAMES = {"running_mean": "moving_mean", "running_var": "moving_variance", "weight": "gamma", "bias": "beta"}
#: torch-only bookkeeping that MindSpore has no parameter for
DROPPED_SUFFIXES = ("num_batches_tracked",)

#: the largest data.pkl read (torch writes ~100 bytes a tensor)
MAX_PICKLE_BYTES = 64 << 20
#: the deepest MARK nesting in data.pkl (torch.save writes a few)
MAX_PICKLE_MARKS = 100
#: the deepest nesting of ``{'state_dict': {...}}`` wrappers looked through
MAX_NESTING = 16
#: copies of non-contiguous tensors may total this many times the bytes of the file or its storages
COPY_FACTOR = 4
#: the Python objects data.pkl builds may total about this many times its bytes (torch's: ~5x)
OBJECT_FACTOR = 32

_DEFLATE_RATIO = 1032          # zlib's bound: a deflate stream expands at most 1032:1
_LOCAL_HEADER = 30             # bytes of a zip local file header before its name
_INT64 = 1 << 63
_SCALARS = (str, int, float, bool, type(None), bytes)
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
_STORAGE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: what zipfile raises for a damaged archive or entry
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error,
               OverflowError, NotImplementedError, zlib.error, UnicodeDecodeError, RuntimeError)


def _kind(obj):
    """What ``obj`` is, for messages, without its repr (a hostile tuple's repr can cost 2**100)."""
    if isinstance(obj, (tuple, list, dict)):
        return f"a {type(obj).__name__} of {len(obj)}"
    name = type(obj).__name__
    return f"an {name}" if name[0] in "aeiou" or name == "ndarray" else f"a {name}"


def _cause(err):
    text = str(err)
    text = text if len(text) <= 200 else text[:200] + "..."
    kind = type(err).__name__ if type(err).__module__ == "builtins" else \
        f"{type(err).__module__}.{type(err).__name__}"
    return f"{text} ({kind})" if text else kind


# ---------------------------------------------------------------- the zip archive


def _open_archive(path):
    try:
        return zipfile.ZipFile(path)
    except UnicodeDecodeError:
        raise CheckpointError("an entry name in the zip directory is flagged UTF-8 but is not valid "
                              "UTF-8: the archive is damaged; re-save it with torch.save", file=path) from None
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        raise CheckpointError(f"cannot open it: {err.strerror}", file=path) from None
    except _ZIP_ERRORS as err:
        raise CheckpointError(f"not a zip archive ({_cause(err)}): re-save it with torch.save (the "
                              f"legacy non-zip format is not supported)", file=path) from None


def _check_entry(info, archive_size, path):
    """Refuse an entry before reading it unless the archive can back its declared size."""
    name, size, packed = info.filename, info.file_size, info.compress_size
    if info.flag_bits & 0x1:
        raise CheckpointError(f"entry {name} is encrypted; torch.save never encrypts: re-save the "
                              f"checkpoint", file=path)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CheckpointError(f"entry {name} uses compression method {info.compress_type}; only stored "
                              f"(as torch.save writes) and deflated entries are readable", file=path)
    end = info.header_offset + _LOCAL_HEADER + packed
    if info.header_offset < 0 or end > archive_size:
        raise CheckpointError(f"entry {name} runs past the end of the archive (to byte {end} of "
                              f"{archive_size}): the file is truncated or damaged", file=path)
    if info.compress_type == zipfile.ZIP_STORED and size != packed:
        raise CheckpointError(f"stored entry {name} declares {size} bytes but stores {packed}: the "
                              f"archive is damaged", file=path)
    if size > _DEFLATE_RATIO * packed + 64:
        raise CheckpointError(f"entry {name} declares {size} bytes from {packed} compressed bytes, more "
                              f"than deflate's {_DEFLATE_RATIO}:1 can expand (a zip bomb)", file=path)


def _read_entry(archive, info, archive_size, path, most=None, limit=""):
    """The bytes of a checked entry of at most ``most`` bytes; a damaged one is a CheckpointError."""
    _check_entry(info, archive_size, path)
    if most is not None and info.file_size > most:
        raise CheckpointError(f"entry {info.filename} declares {info.file_size} bytes, more than {most} "
                              f"bytes{limit}", file=path)
    try:
        data = archive.read(info)
    except _ZIP_ERRORS as err:
        raise CheckpointError(f"entry {info.filename} is damaged: {_cause(err)}", file=path) from None
    if len(data) != info.file_size:
        raise CheckpointError(f"entry {info.filename} holds {len(data)} bytes, not the {info.file_size} "
                              f"its header declares", file=path)
    return data


def _archive_root(infos, path):
    pickles = [name for name in infos if name.endswith("/data.pkl")]
    if not pickles:
        raise CheckpointError("no data.pkl in the archive: not a torch.save file", file=path)
    if len(pickles) > 1:
        raise CheckpointError(f"{len(pickles)} data.pkl entries ({', '.join(pickles[:3])}); a torch.save "
                              f"file has exactly one", file=path)
    return pickles[0][: -len("/data.pkl")]


# ---------------------------------------------------------------- tensors


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """One storage's elements, read once from ``<root>/data/<key>``."""

    def __init__(self, key, storage_type, array):
        self.key, self.type, self.array = key, storage_type, array


def _int64s(values, what, tensor, path):
    """``values`` as a tuple of ints; refuse anything else before any arithmetic on it."""
    if not isinstance(values, (tuple, list)):
        raise CheckpointError(f"{tensor}: {what} must be a tuple of ints, not {_kind(values)}", file=path)
    if len(values) > MAX_DIMS:
        raise CheckpointError(f"{tensor} has {len(values)} dims; at most {MAX_DIMS} are possible", file=path)
    for v in values:
        if type(v) is not int:
            raise CheckpointError(f"{tensor}: {what} must be a tuple of ints; it holds {_kind(v)}", file=path)
        if not -_INT64 <= v < _INT64:
            raise CheckpointError(f"{tensor}: {what} holds an int of {v.bit_length()} bits, outside int64",
                                  file=path)
    return tuple(values)


def _check_layout(size, stride, offset, storage, tensor, path):
    """Raise unless every element of the view lies inside the storage and none is read twice over."""
    def fail(message):
        raise CheckpointError(f"{tensor} {message}", file=path)

    if len(size) != len(stride):
        fail(f"has {len(size)} sizes but {len(stride)} strides")
    if any(n < 0 for n in size):
        fail(f"has a negative size in {list(size)}")
    if any(s < 0 and n > 1 for n, s in zip(size, stride)):
        fail(f"has a negative stride in {list(stride)}; PyTorch never writes one: the file is damaged "
             f"or hostile")
    if offset < 0:
        fail(f"has a negative storage offset {offset}")
    held, where = storage.array.size, f"of size {list(size)}, strides {list(stride)} at offset {offset}"
    if 0 in size:
        if offset > held:
            fail(f"has storage offset {offset}, past the end of storage {storage.key} ({held} elements)")
        if math.prod(n for n in size if n) * storage.type.dtype.itemsize >= _INT64 // 2:
            fail(f"of size {list(size)} is too large for an array")
        return
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= held:
        fail(f"{where} reaches element {last}, past the {held} elements of storage {storage.key}")
    count = math.prod(size)
    if count > held:
        fail(f"{where} has {count} elements but storage {storage.key} holds only {held}: overlapping or "
             f"expanded (stride 0) views are refused; save t.contiguous() tensors")


def _contiguous_strides(size):
    strides, step = [], 1
    for n in reversed(size):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


# ---------------------------------------------------------------- the pickle


def _check_keys(keys, what, path):
    for key in keys:
        if not isinstance(key, _SCALARS):
            raise CheckpointError(f"{what} is {_kind(key)}: only str, int, float, bool, None and "
                                  f"bytes are accepted (state dicts are keyed by name)", file=path)


#: about what each object-building opcode allocates: (bytes, bytes per item it takes off a mark)
_OBJECT_COSTS = {
    pickle.EMPTY_DICT: (64, 0), pickle.EMPTY_LIST: (56, 0), pickle.EMPTY_SET: (216, 0),
    pickle.TUPLE1: (48, 0), pickle.TUPLE2: (56, 0), pickle.TUPLE3: (64, 0), pickle.REDUCE: (128, 0),
    pickle.NEWOBJ: (128, 0), pickle.NEWOBJ_EX: (128, 0), pickle.MEMOIZE: (72, 0), pickle.BINPUT: (40, 0),
    pickle.LONG_BINPUT: (72, 0), pickle.PUT: (72, 0), pickle.TUPLE: (40, 16), pickle.LIST: (56, 16),
    pickle.DICT: (64, 16), pickle.FROZENSET: (216, 16), pickle.INST: (128, 16), pickle.OBJ: (128, 16),
}


def _charged(load, cost, per_item):
    """``load`` after charging what it builds to the unpickler's object budget."""
    def charged(self):
        self.charge(cost + per_item * len(self.stack))
        load(self)
    return charged


class _Dispatch(dict):
    def __missing__(self, code):
        raise pickle.UnpicklingError(f"unknown opcode 0x{code:02x}")


#: the only globals data.pkl may name, and the unpickler method each resolves to
_GLOBALS = {
    ("collections", "OrderedDict"): "ordered_dict",
    ("torch._utils", "_rebuild_tensor_v2"): "rebuild_tensor",
    ("torch._utils", "_rebuild_parameter"): "rebuild_parameter",
    ("torch._utils", "_rebuild_parameter_with_state"): "rebuild_parameter",
}


class _StateDictUnpickler(pickle._Unpickler):
    """A pure-Python unpickler for state dicts: few globals, scalar keys, bounded nesting."""

    def __init__(self, data, archive, infos, root, path, archive_size):
        super().__init__(io.BytesIO(data))
        self.archive, self.infos, self.root, self.path = archive, infos, root, path
        self.archive_size = archive_size
        self.storages, self.stored, self.copied = {}, 0, 0
        self.built, self.most_built = 0, OBJECT_FACTOR * len(data) + (1 << 20)

    def fail(self, message):
        raise CheckpointError(message, file=self.path)

    def find_class(self, module, name):
        if (module, name) in _GLOBALS:
            return getattr(self, _GLOBALS[(module, name)])
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        self.fail(f"refusing to unpickle {module}.{name}: only PyTorch state dicts (tensors in dicts) "
                  f"can be converted")

    def load_state(self):
        try:
            return self.load()
        except CheckpointError:
            raise
        except EOFError:
            self.fail("data.pkl ends before its STOP opcode: the file is truncated")
        except (pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError, AttributeError,
                struct.error, OverflowError, RecursionError) as err:
            self.fail(f"data.pkl is not a valid state-dict pickle: {_cause(err)}")

    # -------- the globals a state dict uses

    def ordered_dict(self, *args, **kwargs):
        if args or kwargs:
            self.fail("data.pkl builds an OrderedDict from arguments; torch.save writes OrderedDict() "
                      "and then sets its items")
        return OrderedDict()

    def tensor_name(self):
        """'tensor <name>' from the key torch pushes before the tensor's REDUCE, if it is there."""
        frames = [self.stack] if len(self.stack) >= 2 else self.metastack[-1:]
        for frame in frames:
            if len(frame) >= 2 and type(frame[-2]) is str:
                return f"tensor {frame[-2][:100]!r}"
        return "a tensor"

    def rebuild_tensor(self, storage, offset, size, stride, *unused):
        tensor = self.tensor_name()
        if not isinstance(storage, _Storage):
            self.fail(f"{tensor}: its storage is {_kind(storage)}, not a storage of this archive")
        if type(offset) is not int:
            self.fail(f"{tensor}: its storage offset is {_kind(offset)}, not an int")
        if not -_INT64 <= offset < _INT64:
            self.fail(f"{tensor}: its storage offset is an int of {offset.bit_length()} bits, outside int64")
        size = _int64s(size, "size", tensor, self.path)
        stride = _int64s(stride, "stride", tensor, self.path)
        _check_layout(size, stride, offset, storage, tensor, self.path)
        dtype = storage.type.dtype
        if 0 in size:
            return np.zeros(size, dtype)
        stride = tuple(0 if n == 1 else s for n, s in zip(size, stride))   # irrelevant where n == 1
        count = math.prod(size)
        if stride == tuple(0 if n == 1 else s for n, s in zip(size, _contiguous_strides(size))):
            return storage.array[offset:offset + count].reshape(size)
        self.charge_copy(count * dtype.itemsize)
        view = np.ndarray(size, dtype, buffer=storage.array, offset=offset * dtype.itemsize,
                          strides=tuple(s * dtype.itemsize for s in stride))
        return np.ascontiguousarray(view)

    def charge_copy(self, nbytes):
        self.copied += nbytes
        base = max(self.archive_size, self.stored)
        if self.copied > COPY_FACTOR * base:
            self.fail(f"non-contiguous tensors need {self.copied} bytes of copies, more than {COPY_FACTOR}x "
                      f"the {base} bytes of the file: views of one storage are rebuilt again and again; "
                      f"save .contiguous() tensors")

    def rebuild_parameter(self, data, *unused):
        if not isinstance(data, np.ndarray):
            self.fail(f"parameter data is {_kind(data)}, not a tensor")
        return data

    # -------- storages

    def persistent_load(self, saved_id):
        if not (type(saved_id) is tuple and len(saved_id) == 5 and type(saved_id[0]) is str
                and saved_id[0] == "storage"):
            self.fail(f"persistent id is {_kind(saved_id)}, not ('storage', type, key, location, numel) "
                      f"as torch.save writes it")
        _, storage_type, key, _location, numel = saved_id
        if not isinstance(storage_type, _StorageType):
            self.fail(f"storage type is {_kind(storage_type)}, not one of torch's "
                      f"{', '.join(_STORAGE_DTYPES)}")
        if type(key) is not str:
            self.fail(f"storage key is {_kind(key)}, not a str such as '0'")
        if not _STORAGE_KEY.fullmatch(key):
            self.fail(f"storage key {key[:100]!r} is not a short name such as '0' (letters, digits, _ . -)")
        if type(numel) is not int or not 0 <= numel < _INT64:
            count = f"{numel}" if type(numel) is int and numel.bit_length() < 64 else _kind(numel)
            self.fail(f"storage {key} declares element count {count}, not a non-negative int64")
        if key not in self.storages:
            self.storages[key] = self.load_storage(key, storage_type, numel)
        storage = self.storages[key]
        if storage.type.name != storage_type.name:
            self.fail(f"storage {key} is read both as {storage.type.name} and as {storage_type.name}")
        return storage

    def load_storage(self, key, storage_type, numel):
        name = f"{self.root}/data/{key}"
        info = self.infos.get(name)
        if info is None:
            self.fail(f"storage {key} is missing from the archive (no entry {name})")
        itemsize = storage_type.dtype.itemsize
        if info.file_size != numel * itemsize:
            self.fail(f"storage {key} holds {info.file_size} bytes, not {numel} elements of "
                      f"{storage_type.name} ({numel * itemsize} bytes)")
        raw = _read_entry(self.archive, info, self.archive_size, self.path)
        self.stored += len(raw)
        return _Storage(key, storage_type, np.frombuffer(raw, storage_type.dtype))

    # -------- opcodes that build objects: charged against OBJECT_FACTOR x the pickle's size

    def charge(self, nbytes):
        self.built += nbytes
        if self.built > self.most_built:
            self.fail(f"data.pkl builds over {self.most_built} bytes of Python objects, more than "
                      f"{OBJECT_FACTOR}x its own size: a pickle bomb (a state dict builds ~5x)")

    # -------- opcodes that hash, nest or set state: checked before they act

    def check_target(self, obj, opcode, kinds):
        if not isinstance(obj, kinds):
            self.fail(f"{opcode} on {_kind(obj)}: data.pkl is damaged or hostile")

    def below_mark(self):
        return self.metastack[-1][-1] if self.metastack and self.metastack[-1] else None

    def load_mark(self):
        if len(self.metastack) >= MAX_PICKLE_MARKS:
            self.fail(f"data.pkl has marks nested more than {MAX_PICKLE_MARKS} deep; torch.save writes a few")
        pickle._Unpickler.load_mark(self)

    def load_setitem(self):
        if len(self.stack) >= 3:
            self.check_target(self.stack[-3], "SETITEM", dict)
            _check_keys(self.stack[-2:-1], "dict key", self.path)
        pickle._Unpickler.load_setitem(self)

    def load_setitems(self):
        self.check_target(self.below_mark(), "SETITEMS", dict)
        _check_keys(self.stack[0::2], "dict key", self.path)
        pickle._Unpickler.load_setitems(self)

    def load_dict(self):
        _check_keys(self.stack[0::2], "dict key", self.path)
        pickle._Unpickler.load_dict(self)

    def load_additems(self):
        self.check_target(self.below_mark(), "ADDITEMS", set)
        _check_keys(self.stack, "set item", self.path)
        pickle._Unpickler.load_additems(self)

    def load_frozenset(self):
        _check_keys(self.stack, "set item", self.path)
        pickle._Unpickler.load_frozenset(self)

    def load_append(self):
        if len(self.stack) >= 2:
            self.check_target(self.stack[-2], "APPEND", list)
        pickle._Unpickler.load_append(self)

    def load_appends(self):
        self.check_target(self.below_mark(), "APPENDS", list)
        pickle._Unpickler.load_appends(self)

    def load_build(self):
        """torch.save BUILDs an OrderedDict with its ``_metadata``: dropped; nothing else is built."""
        state, inst = self.stack.pop(), self.stack[-1] if self.stack else None
        if type(inst) is not OrderedDict or not isinstance(state, dict):
            self.fail(f"BUILD of {_kind(inst)} from {_kind(state)}: only an OrderedDict's "
                      f"_metadata is expected in a state dict")

    dispatch = _Dispatch(pickle._Unpickler.dispatch)
    dispatch.update({pickle.MARK[0]: load_mark, pickle.SETITEM[0]: load_setitem,
                     pickle.SETITEMS[0]: load_setitems, pickle.DICT[0]: load_dict,
                     pickle.ADDITEMS[0]: load_additems, pickle.FROZENSET[0]: load_frozenset,
                     pickle.APPEND[0]: load_append, pickle.APPENDS[0]: load_appends,
                     pickle.BUILD[0]: load_build})
    for _op, (_cost, _per_item) in _OBJECT_COSTS.items():
        dispatch[_op[0]] = _charged(dispatch[_op[0]], _cost, _per_item)
    del _op, _cost, _per_item


# ---------------------------------------------------------------- reading


def _unpickle(archive, path):
    archive_size = os.path.getsize(path)
    infos = {info.filename: info for info in archive.infolist()}
    root = _archive_root(infos, path)
    byteorder = infos.get(f"{root}/byteorder")
    if byteorder is not None and _read_entry(archive, byteorder, archive_size, path, 16).strip() != b"little":
        raise CheckpointError("big-endian PyTorch checkpoints are not supported", file=path)
    data = _read_entry(archive, infos[f"{root}/data.pkl"], archive_size, path, MAX_PICKLE_BYTES,
                       " (torch_format.MAX_PICKLE_BYTES; torch pickles ~100 bytes a tensor)")
    return _StateDictUnpickler(data, archive, infos, root, path, archive_size).load_state()


def _find_state_dict(obj, path):
    """The dict of arrays inside what torch.save wrote (plain, or under 'state_dict'/'model')."""
    seen = set()
    for _ in range(MAX_NESTING + 1):
        if not isinstance(obj, dict):
            return None
        if id(obj) in seen:
            raise CheckpointError("a dict in the checkpoint refers to itself under a 'state_dict'/'model' "
                                  "key: the file is damaged or hostile", file=path)
        seen.add(id(obj))
        if obj and all(isinstance(v, np.ndarray) for v in obj.values()):
            return obj
        key = next((k for k in _WRAPPER_KEYS if k in obj), None)
        if key is None:
            return {k: v for k, v in obj.items() if isinstance(v, np.ndarray)} or None
        obj = obj[key]
    raise CheckpointError(f"state dicts are nested more than {MAX_NESTING} levels deep under "
                          f"'state_dict'/'model' keys", file=path)


def read_torch_state_dict(path) -> OrderedDict[str, np.ndarray]:
    """Read a ``torch.save`` zip file's state dict as numpy arrays, without torch or unsafe pickle.

    Contiguous tensors are read-only views of their storage's bytes; others are copies.

    >>> weights = read_torch_state_dict("resnet50.pth")        # doctest: +SKIP
    """
    path = str(path)
    with reading(path, CheckpointError, "PyTorch checkpoint"):
        with _open_archive(path) as archive:
            obj = _unpickle(archive, path)
        state = _find_state_dict(obj, path)
        if state is None:
            raise CheckpointError("the file holds no tensors in a dict (expected a state_dict)", file=path)
        return OrderedDict((str(k), v) for k, v in state.items())


# ---------------------------------------------------------------- names


def _norm_layers(names, shapes):
    """Layers with running statistics; with shapes, also those whose only parameters are a
    ``weight`` and a ``bias`` of one shape (LayerNorm, GroupNorm, InstanceNorm: no torch.nn
    Linear, Conv or Embedding has that)."""
    layers = {n.rpartition(".")[0] for n in names if n.rpartition(".")[2] == "running_mean"}
    if shapes is None:
        return layers
    params = {}
    for name in names:
        layer, _, suffix = name.rpartition(".")
        if suffix not in DROPPED_SUFFIXES:
            params.setdefault(layer, {})[suffix] = shapes[name]
    for layer, p in params.items():
        if set(p) == {"weight", "bias"} and p["weight"] == p["bias"]:
            layers.add(layer)
    return layers


def torch_to_mindspore_names(names, renames=None):
    """Map PyTorch state-dict names to MindSpore names; dropped names map to None.

    ``names`` is a list of names or the state dict itself (name -> array). Normalisation layers get
    their suffixes renamed by ``renames`` (default ``RENAMES``): a layer is one when it has
    ``running_mean`` (BatchNorm) or, given the state dict, when its only parameters are a ``weight``
    and a ``bias`` of the same shape (LayerNorm, GroupNorm, InstanceNorm -> gamma/beta). Everything
    else keeps its name, Embedding's ``weight`` included (MindSpore: ``embedding_table``), since
    names and shapes cannot tell it from a Linear without bias: rename it by hand.

    >>> torch_to_mindspore_names(["bn1.weight", "bn1.running_mean", "fc.weight"])
    OrderedDict({'bn1.weight': 'bn1.gamma', 'bn1.running_mean': 'bn1.moving_mean', 'fc.weight': 'fc.weight'})
    """
    renames = RENAMES if renames is None else renames
    shapes = {n: tuple(np.shape(v)) for n, v in names.items()} if isinstance(names, Mapping) else None
    names = list(names)
    norm_layers = _norm_layers(names, shapes)
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
