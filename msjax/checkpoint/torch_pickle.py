"""The pickle side of a ``torch.save`` file: a restricted unpickler for state dicts.

data.pkl is read by a pure-Python unpickler that resolves only the handful of globals a state
dict needs (so a file cannot run code) and refuses dict keys and set items that are not scalars
before anything hashes them (so no key can hang it). Every storage, size, stride and offset is
checked against the bytes that back it before anything is allocated: copies of non-contiguous
tensors total at most ``COPY_FACTOR`` times the storages, the objects the pickle builds at most
``OBJECT_FACTOR`` times its size. A malformed pickle raises ``CheckpointError`` naming the file.
"""
from __future__ import annotations

import io
import math
import pickle
import re
import struct
from collections import OrderedDict

import ml_dtypes
import numpy as np

from msjax.checkpoint.torch_zip import cause, read_entry
from msjax.common.untrusted import MAX_DIMS
from msjax.errors import CheckpointError

STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}

#: the deepest MARK nesting in data.pkl (torch.save writes a few)
MAX_PICKLE_MARKS = 100
#: copies of non-contiguous tensors may total this many times the bytes of the file or its storages
COPY_FACTOR = 4
#: the Python objects data.pkl builds may total about this many times its bytes (torch's: ~5x)
OBJECT_FACTOR = 32

_INT64 = 1 << 63
_SCALARS = (str, int, float, bool, type(None), bytes)
_STORAGE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def kind(obj):
    """What ``obj`` is, for messages, without its repr (a hostile tuple's repr can cost 2**100)."""
    if isinstance(obj, (tuple, list, dict)):
        return f"a {type(obj).__name__} of {len(obj)}"
    name = type(obj).__name__
    return f"an {name}" if name[0] in "aeiou" or name == "ndarray" else f"a {name}"


# ---------------------------------------------------------------- tensors


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """One storage's elements, read once from ``<root>/data/<key>``."""

    def __init__(self, key, storage_type, array):
        self.key, self.type, self.array = key, storage_type, array


def _int64s(values, what, tensor, path):
    """``values`` as a tuple of ints; refuse anything else before any arithmetic on it."""
    if not isinstance(values, (tuple, list)):
        raise CheckpointError(f"{tensor}: {what} must be a tuple of ints, not {kind(values)}", file=path)
    if len(values) > MAX_DIMS:
        raise CheckpointError(f"{tensor} has {len(values)} dims; at most {MAX_DIMS} are possible", file=path)
    for v in values:
        if type(v) is not int:
            raise CheckpointError(f"{tensor}: {what} must be a tuple of ints; it holds {kind(v)}", file=path)
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
            raise CheckpointError(f"{what} is {kind(key)}: only str, int, float, bool, None and "
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


class StateDictUnpickler(pickle._Unpickler):
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
        if module == "torch" and name in STORAGE_DTYPES:
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
            self.fail(f"data.pkl is not a valid state-dict pickle: {cause(err)}")

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
            self.fail(f"{tensor}: its storage is {kind(storage)}, not a storage of this archive")
        if type(offset) is not int:
            self.fail(f"{tensor}: its storage offset is {kind(offset)}, not an int")
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
            self.fail(f"parameter data is {kind(data)}, not a tensor")
        return data

    # -------- storages

    def persistent_load(self, saved_id):
        if not (type(saved_id) is tuple and len(saved_id) == 5 and type(saved_id[0]) is str
                and saved_id[0] == "storage"):
            self.fail(f"persistent id is {kind(saved_id)}, not ('storage', type, key, location, numel) "
                      f"as torch.save writes it")
        _, storage_type, key, _location, numel = saved_id
        if not isinstance(storage_type, _StorageType):
            self.fail(f"storage type is {kind(storage_type)}, not one of torch's "
                      f"{', '.join(STORAGE_DTYPES)}")
        if type(key) is not str:
            self.fail(f"storage key is {kind(key)}, not a str such as '0'")
        if not _STORAGE_KEY.fullmatch(key):
            self.fail(f"storage key {key[:100]!r} is not a short name such as '0' (letters, digits, _ . -)")
        if type(numel) is not int or not 0 <= numel < _INT64:
            count = f"{numel}" if type(numel) is int and numel.bit_length() < 64 else kind(numel)
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
        raw = read_entry(self.archive, info, self.archive_size, self.path)
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
            self.fail(f"{opcode} on {kind(obj)}: data.pkl is damaged or hostile")

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
            self.fail(f"BUILD of {kind(inst)} from {kind(state)}: only an OrderedDict's "
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

