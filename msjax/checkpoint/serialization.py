"""MindSpore 2.10's ``save_checkpoint``, ``load_checkpoint`` and ``load_param_into_net``.

Composition only: the byte layout lives in ``codec`` (and ``crypto``, ``safetensors_format``), the
atomic/async file handling in ``io``, parameter matching in ``matching``.

>>> msjax.save_checkpoint(net, "lenet.ckpt")
>>> param_dict = msjax.load_checkpoint("lenet.ckpt", filter_prefix="fc3")
>>> param_not_load, ckpt_not_load = msjax.load_param_into_net(net, param_dict)
"""
from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np

from msjax.checkpoint import codec, io as ckpt_io
from msjax.checkpoint.matching import load_param_into_net
from msjax.common import dtype as mstype
from msjax.common.tensor import Parameter, Tensor
from msjax.common.untrusted import reading
from msjax.common.validator import check_isinstance
from msjax.errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "load_checkpoint_async", "load_param_into_net",
           "wait_async_save"]

wait_async_save = ckpt_io.wait_async_save
_FORMATS = ("ckpt", "safetensors")
_TYPE_META = "ms_dtype"      # Parameter metadata: stored dtype string when numpy cannot tell it


# --------------------------------------------------------------------------- save

def _check_file_name(ckpt_file_name, format):
    if format not in _FORMATS:
        raise ValueError(f"For 'save_checkpoint', the format must be 'safetensors' or 'ckpt', but got {format}.")
    if not isinstance(ckpt_file_name, (str, os.PathLike)):
        raise TypeError(f"For 'save_checkpoint', 'ckpt_file_name' must be a str, got "
                        f"{type(ckpt_file_name).__name__}")
    name = os.path.realpath(os.fspath(ckpt_file_name))
    if os.path.isdir(name):
        raise IsADirectoryError(f"For 'save_checkpoint', {name} is a directory, it must be a file name.")
    return name if name.endswith(format) else f"{name}.{format}"


def _is_cell(obj):
    return hasattr(obj, "parameters_and_names") and hasattr(obj, "construct")


def _data(value, name):
    """What a save_obj/append_dict entry stores: a host array (or str) and its dtype override."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, Parameter):
        return value.get_value(), value.get_metadata(_TYPE_META, None)
    if isinstance(value, Tensor):
        return value._array(), None
    if isinstance(value, (np.ndarray, jax.Array, np.generic)):
        return value, None
    raise TypeError(f"save_checkpoint: entry {name!r} is a {type(value).__name__}; expected a "
                    f"Parameter, Tensor, jax or numpy array (or str)")


def _save_items(save_obj, choice_func):
    """(name, value) pairs of ``save_obj`` in MindSpore's order, filtered by ``choice_func``."""
    if _is_cell(save_obj):
        items = [(p.name, p) for _, p in save_obj.parameters_and_names()]
    elif isinstance(save_obj, dict):
        items = list(save_obj.items())
        bad = [k for k, _ in items if not isinstance(k, str)]
        if bad:
            raise TypeError(f"For save_checkpoint, dict keys must be str, got {bad[0]!r}")
    elif isinstance(save_obj, (list, tuple)):
        items = []
        for item in save_obj:
            if isinstance(item, dict):
                if "name" not in item or "data" not in item:
                    raise TypeError(f"For save_checkpoint, a list entry must be {{'name': ..., 'data': ...}}, "
                                    f"got keys {sorted(item)}")
                if not isinstance(item["name"], str):
                    raise TypeError(f"For save_checkpoint, 'name' must be a str, got {item['name']!r}")
                items.append((item["name"], item["data"]))
            elif isinstance(item, Parameter):
                items.append((item.name, item))
            else:
                raise TypeError(f"For save_checkpoint, list entries must be Parameters or "
                                f"{{'name', 'data'}} dicts, got {type(item).__name__}")
    else:
        raise TypeError(f"For 'save_checkpoint', 'save_obj' must be a Cell, list or dict, got "
                        f"{type(save_obj).__name__}")
    return [(n, v) for n, v in items if choice_func is None or choice_func(n)]


def _check_storable(data, name, caller="save_checkpoint"):
    """Raise a TypeError naming ``name`` when MindSpore has no dtype for ``data``."""
    try:
        mstype.from_numpy(data.dtype)
    except TypeError:
        raise TypeError(f"{caller}: parameter {name!r} has dtype {data.dtype}, which MindSpore "
                        f"cannot store") from None


def _append_value(name, value):
    if isinstance(value, bool):
        return np.array(value, np.bool_)
    if isinstance(value, int):
        return np.array(value, np.int64)
    if isinstance(value, float):
        return np.array(value, np.float32)
    if isinstance(value, (str, Parameter, Tensor)):
        return value
    raise TypeError(f"For 'save_checkpoint', append_dict[{name!r}] must be int, float, bool, str, "
                    f"Parameter or Tensor, got {type(value).__name__}")


def _snapshot(save_obj, append_dict, choice_func, copy):
    """name -> host numpy array or str, plus dtype overrides; ``copy`` detaches mutable arrays."""
    items = _save_items(save_obj, choice_func)
    if append_dict is not None:
        if not isinstance(append_dict, dict):
            raise TypeError(f"For 'save_checkpoint', 'append_dict' must be a dict, got "
                            f"{type(append_dict).__name__}")
        for key, value in append_dict.items():
            if not isinstance(key, str):
                raise TypeError(f"For 'save_checkpoint', append_dict keys must be str, got {key!r}")
            items.append((key, _append_value(key, value)))
    named, types = OrderedDict(), {}
    for name, value in items:
        data, override = _data(value, name)
        if not isinstance(data, str):
            if isinstance(data, np.ndarray):
                data = data.copy() if copy and data.flags.writeable else data
            else:  # jax arrays are immutable; a host view keeps the buffer from being donated
                data = np.asarray(data)
            _check_storable(data, name)
        named[name] = data
        types.pop(name, None)
        if override:
            types[name] = override
    return named, types


def _write(path, named, types, enc_key, enc_mode, crc_check, format, fsync, remove_redundancy=None):
    if format == "safetensors":
        from msjax.checkpoint import safetensors_format
        meta = dict(safetensors_format.MS_METADATA)
        if remove_redundancy is not None:
            meta["remove_redundancy"] = str(remove_redundancy)
        meta.update({n: "Int4" for n, t in types.items() if t == "Int4"})
        safetensors_format.save(named, path, metadata=meta if named else None, crc_check=crc_check,
                                fsync=fsync)
        return

    def write(f):
        if enc_key is None:
            crc = codec.write_records(f, named, crc=0 if crc_check else None, types=types)
            if crc_check:
                f.write(codec.crc_trailer(crc))
            return
        from msjax.checkpoint import crypto
        plain = _Buffer()
        codec.write_records(plain, named, types=types)
        crypto.write_encrypted(f, plain.view(), enc_key, enc_mode)

    ckpt_io.atomic_write(path, write, fsync=fsync)


class _Buffer:
    """A write-only byte sink that keeps large writes as one growing bytearray."""

    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data += b
        return len(b)

    def view(self):
        return memoryview(self.data)


def save_checkpoint(save_obj, ckpt_file_name, integrated_save=True, async_save=False, append_dict=None,
                    enc_key=None, enc_mode="AES-GCM", choice_func=None, crc_check=False, format="ckpt",
                    *, fsync=True, **kwargs):
    """Save ``save_obj`` (a Cell, a list of Parameters or ``{"name", "data"}`` dicts, or a dict
    name -> Parameter/Tensor/array) to ``ckpt_file_name``, as MindSpore 2.10 does.

    The write is atomic (temporary file, flush, ``fsync`` unless ``fsync=False``, rename).
    ``async_save=True | "thread" | "process"`` returns an ``AsyncSave`` handle once a host snapshot
    exists; ``.result()`` waits and re-raises. Otherwise returns None.

    ``kwargs`` are MindSpore's: ``remove_redundancy`` (None or bool; recorded in a safetensors
    file's metadata as "True"/"False", as MindSpore does). Other keys are ignored, as in MindSpore.

    >>> save_checkpoint(net, "net.ckpt", append_dict={"epoch_num": 3}, crc_check=True)
    """
    path = _check_file_name(ckpt_file_name, format)
    if not isinstance(integrated_save, bool):
        raise TypeError(f"For 'save_checkpoint', 'integrated_save' must be a bool, got {integrated_save!r}")
    if not isinstance(async_save, (bool, str)):
        raise TypeError(f"For 'save_checkpoint', 'async_save' must be a bool or str, got {async_save!r}")
    if isinstance(async_save, str) and async_save not in ("process", "thread"):
        raise ValueError(f"For 'save_checkpoint', 'async_save' can only be 'process' or 'thread', got {async_save!r}")
    check_isinstance("save_checkpoint", "enc_key", enc_key, (type(None), bytes))
    check_isinstance("save_checkpoint", "enc_mode", enc_mode, str)
    check_isinstance("save_checkpoint", "crc_check", crc_check, bool)
    remove_redundancy = check_isinstance("save_checkpoint", "remove_redundancy",
                                          kwargs.get("remove_redundancy"), (type(None), bool))
    if format == "safetensors" and (enc_key is not None or enc_mode != "AES-GCM"):
        raise ValueError("For 'save_checkpoint', format='safetensors' cannot be encrypted: leave "
                         "enc_key=None and enc_mode='AES-GCM'")
    if enc_key is not None and crc_check:
        raise ValueError("For 'save_checkpoint', enc_key and crc_check=True cannot be combined "
                         "(MindSpore cannot load such a file); use one of them")
    if enc_key is not None:
        from msjax.checkpoint import crypto
        crypto.encrypt(b"", enc_key, enc_mode)       # validates key length and mode up front

    # a thread needs its own copy of mutable (numpy) arrays; a forked process gets a
    # copy-on-write snapshot of the whole memory for free, and jax arrays are immutable
    named, types = _snapshot(save_obj, append_dict, choice_func, copy=async_save in (True, "thread"))

    def job():
        _write(path, named, types, enc_key, enc_mode, crc_check, format, fsync, remove_redundancy)

    if async_save == "process":
        return ckpt_io.start_process(path, job)
    if async_save:
        return ckpt_io.start_thread(path, job)
    ckpt_io.wait_for(path)
    job()
    return None


# --------------------------------------------------------------------------- load

def _check_prefix(prefix, arg):
    if prefix is None:
        return None
    if not isinstance(prefix, (str, list, tuple)):
        raise TypeError(f"For 'load_checkpoint', '{arg}' must be a str, list[str] or tuple[str], "
                        f"got {type(prefix).__name__}")
    prefix = (prefix,) if isinstance(prefix, str) else tuple(prefix)
    if not prefix:
        raise ValueError(f"For 'load_checkpoint', '{arg}' can't be empty")
    for index, pre in enumerate(prefix):
        if not isinstance(pre, str):
            raise TypeError(f"For 'load_checkpoint', '{arg}'[{index}] must be a str, got {type(pre).__name__}")
        if pre == "":
            raise ValueError(f"For 'load_checkpoint', '{arg}' can't include ''")
    return prefix


def _selector(specify_prefix, filter_prefix, choice_func):
    """MindSpore's rule: the prefixes win; choice_func applies only when both are None."""
    if specify_prefix is None and filter_prefix is None:
        return choice_func

    def select(name):
        if specify_prefix and not name.startswith(specify_prefix):
            return False
        return not (filter_prefix and name.startswith(filter_prefix))
    return select


class _Memory:
    """Seekable read-only view over decrypted bytes, with the file API the codec uses; positions
    past the end read as empty, as a file's do."""

    def __init__(self, data):
        self.view, self.pos = memoryview(data), 0

    def seek(self, pos, whence=0):
        base = {0: 0, 1: self.pos, 2: len(self.view)}[whence]
        if base + pos < 0:
            raise ValueError(f"negative seek position {base + pos}")
        self.pos = base + pos
        return self.pos

    def read(self, n=-1):
        start = min(self.pos, len(self.view))
        end = len(self.view) if n is None or n < 0 else min(start + n, len(self.view))
        self.pos = max(self.pos, end)
        return bytes(self.view[start:end])

    def readinto(self, out):
        start = min(self.pos, len(self.view))
        n = min(len(out), len(self.view) - start)
        out[:n] = self.view[start:start + n]
        self.pos = start + n if n else self.pos
        return n


def _open_source(f, path, dec_key, dec_mode):
    """(source, size): ``f`` itself, or its decrypted bytes; an encrypted file needs ``dec_key``."""
    size = codec.file_size(f)
    mode = codec.cipher_mode(f.read(4))
    f.seek(0)
    if dec_key is not None:
        from msjax.checkpoint import crypto
        source = _Memory(crypto.decrypt_file(f, dec_key, dec_mode, file=path))
        return source, len(source.view)
    if mode is not None:
        raise CheckpointError(f"the file is encrypted ({mode} framing); pass dec_key= and "
                              f"dec_mode='{mode}'", file=path)
    return f, size


def _check_crc(source, end, stored, path):
    if stored is None:
        warnings.warn(f"{path}: crc_check=True but the file has no crc_num trailer", stacklevel=4)
        return
    if stored > 0xFFFFFFFF:
        raise CheckpointError(f"the crc_num trailer holds {stored}, which is no CRC32 (over 32 "
                              f"bits); the trailer is corrupt", file=path)
    computed = codec.crc_of(source, end)
    if computed != stored:
        raise CheckpointError(f"CRC check failed: stored {stored}, computed {computed}; the "
                              f"file is damaged", file=path)


def _read_ckpt(path, select, dec_key, dec_mode, crc_check):
    try:
        f = open(path, "rb")
    except OSError as err:
        raise CheckpointError(f"cannot open checkpoint: {err.strerror}", file=path) from None
    with f:
        source, size = _open_source(f, path, dec_key, dec_mode)
        end, stored = codec.data_end(source, size)
        if crc_check:
            _check_crc(source, end, stored, path)
        types = {}
        named = codec.read_records(source, end, select=select, file=path, types=types)
    return named, types


def _to_parameters(named, types, path):
    out = OrderedDict()
    for name, value in named.items():
        if isinstance(value, str):
            out[name] = value
            continue
        meta = {"ckpt_file": path}
        stored = _stored_type(name, value, types.get(name), path)
        if stored is not None and stored is not mstype.from_numpy(value.dtype):
            meta[_TYPE_META] = stored.ckpt
        out[name] = Parameter(value, name=name, **meta)
    return out


def _stored_type(name, value, tensor_type, path):
    """The msjax type the file declares for ``value`` (None: none declared); it must be stored
    as ``value``'s numpy dtype (Int4: one int8 byte per element)."""
    if not tensor_type:
        return None
    stored = mstype.BY_CKPT.get(tensor_type)
    if stored is None:
        raise CheckpointError(f"parameter {name!r} has unknown tensor_type {tensor_type!r}",
                              file=path)
    if stored.numpy != value.dtype:
        raise CheckpointError(f"parameter {name!r} is marked {tensor_type}, which is stored as "
                              f"{stored.numpy}, but its data is {value.dtype}; the file's "
                              f"metadata contradicts its data", file=path)
    return stored


def load_checkpoint(ckpt_file_name, net=None, strict_load=False, filter_prefix=None, dec_key=None,
                    dec_mode="AES-GCM", specify_prefix=None, choice_func=None, crc_check=False,
                    remove_redundancy=False, format="ckpt"):
    """Load a .ckpt (or MindSpore safetensors) file into an ``OrderedDict`` name -> Parameter
    (``append_dict`` strings come back as str); with ``net``, also load it into ``net``.

    Only the selected tensors' bytes are read (``filter_prefix``/``specify_prefix``, str or
    list/tuple of str; ``choice_func`` when both are None).

    >>> param_dict = load_checkpoint("lenet.ckpt", specify_prefix=["conv", "fc1"])
    """
    specify_prefix = _check_prefix(specify_prefix, "specify_prefix")
    filter_prefix = _check_prefix(filter_prefix, "filter_prefix")
    check_isinstance("load_checkpoint", "dec_key", dec_key, (type(None), bytes))
    check_isinstance("load_checkpoint", "dec_mode", dec_mode, str)
    check_isinstance("load_checkpoint", "crc_check", crc_check, bool)
    check_isinstance("load_checkpoint", "remove_redundancy", remove_redundancy, bool)
    if format not in _FORMATS:
        raise ValueError(f"For 'load_checkpoint', format must be 'ckpt' or 'safetensors', got {format!r}")
    if not isinstance(ckpt_file_name, (str, os.PathLike)):
        raise TypeError(f"For 'load_checkpoint', 'ckpt_file_name' must be a str, got "
                        f"{type(ckpt_file_name).__name__}")
    path = os.fspath(ckpt_file_name)
    if not path.endswith(format):
        raise ValueError(f"For 'load_checkpoint', the checkpoint file format must match 'format', "
                         f"got file_name {path!r}, format {format!r}")
    path = os.path.realpath(path)
    if not os.path.isfile(path):
        raise CheckpointError("checkpoint file does not exist", file=path)
    select = _shielded(_selector(specify_prefix, filter_prefix, choice_func))
    if format == "safetensors" and (dec_key is not None or dec_mode != "AES-GCM"):
        raise ValueError("For 'load_checkpoint', format='safetensors' takes no dec_key/dec_mode")
    try:
        with reading(path, CheckpointError, "checkpoint"):
            if format == "safetensors":
                named, types = _read_safetensors(path, select, crc_check)
            else:
                named, types = _read_ckpt(path, select, dec_key, dec_mode, crc_check)
            if not named:
                raise CheckpointError("the loaded parameter dict is empty (empty file, or "
                                      "filter_prefix/specify_prefix/choice_func selected "
                                      "nothing)", file=path)
            parameter_dict = _to_parameters(named, types, path)
    except _CallerError as err:
        if format == "safetensors":          # MindSpore calls it outside its guard there
            raise err.__cause__ from None
        cause = err.__cause__
        raise ValueError(f"For 'load_checkpoint', choice_func raised {type(cause).__name__}: {cause} "
                         f"on parameter {err.name!r}; failed to load the checkpoint file {path}.") \
            from cause
    if net is not None:
        load_param_into_net(net, parameter_dict, strict_load, remove_redundancy, _file=path)
    return parameter_dict


class ParamDictFuture:
    """What ``load_checkpoint_async`` returns (MindSpore's class of the same name): ``result()``
    waits for the load and returns its param dict, or raises what ``load_checkpoint`` raised."""

    def __init__(self, executor, param_dict_future):
        self.executor = executor
        self.param_dict_future = param_dict_future

    def result(self):
        try:
            return self.param_dict_future.result()
        finally:
            self.executor.shutdown(wait=False)


def load_checkpoint_async(ckpt_file_name, net=None, strict_load=False, filter_prefix=None, dec_key=None,
                          dec_mode="AES-GCM", specify_prefix=None, choice_func=None):
    """``load_checkpoint`` in a background thread (MindSpore 2.10's signature); returns a
    ``ParamDictFuture`` at once, whose ``result()`` is the param dict. The format follows the file
    name (".safetensors", else "ckpt"); errors surface from ``result()``.

    >>> pd_future = load_checkpoint_async("lenet.ckpt")
    >>> param_dict = pd_future.result()
    """
    name = os.fspath(ckpt_file_name) if isinstance(ckpt_file_name, os.PathLike) else ckpt_file_name
    format = "safetensors" if isinstance(name, str) and name.endswith(".safetensors") else "ckpt"
    executor = ThreadPoolExecutor(max_workers=2)
    future = executor.submit(load_checkpoint, ckpt_file_name, net, strict_load, filter_prefix, dec_key,
                             dec_mode, specify_prefix, choice_func, format=format)
    return ParamDictFuture(executor, future)


class _CallerError(Exception):
    """Carries what the caller's ``choice_func`` raised (``__cause__``) on parameter ``name`` past
    the malformed-file guard, so it is never mistaken for a malformed file.

    MindSpore 2.10 turns it into a ``ValueError`` (chained to the original) for a .ckpt, and lets
    it through unchanged for safetensors; ``load_checkpoint`` does the same.
    """

    def __init__(self, name):
        super().__init__(name)
        self.name = name


def _shielded(select):
    """``select``, whose own exceptions become ``_CallerError`` (see there)."""
    if select is None:
        return None

    def call(name):
        try:
            return select(name)
        except Exception as err:
            raise _CallerError(name) from err
    return call


def _read_safetensors(path, select, crc_check):
    from msjax.checkpoint import safetensors_format
    named = safetensors_format.load(path, names=select, crc_check=crc_check)
    meta = safetensors_format.read_metadata(path)
    named = OrderedDict((k, named[k]) for k in sorted(named))
    return named, {k: "Int4" for k in named if meta.get(k) == "Int4"}
