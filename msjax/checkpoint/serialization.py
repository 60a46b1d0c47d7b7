"""MindSpore 2.10's ``save_checkpoint``, ``load_checkpoint`` and ``load_param_into_net``.

Composition only: argument checks (MindSpore's names, defaults and exception types), selection
(``specify_prefix``/``filter_prefix``/``choice_func``), the format looked up in the registry
(``formats``), and async. What a save takes off the network and what a load returns is the item
layer (``items``); parameter matching is ``matching``.

>>> msjax.save_checkpoint(net, "lenet.ckpt")
>>> param_dict = msjax.load_checkpoint("lenet.ckpt", filter_prefix="fc3")
>>> param_not_load, ckpt_not_load = msjax.load_param_into_net(net, param_dict)
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from msjax.checkpoint import crypto, formats, items, nnx_interop
from msjax.checkpoint import io as ckpt_io
from msjax.checkpoint.matching import load_param_into_net
from msjax.common.formats import CHECKPOINT_FORMATS
from msjax.common.untrusted import reading
from msjax.common.validator import check_isinstance
from msjax.common.warn_once import warn_ignored
from msjax.errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "load_checkpoint_async", "load_param_into_net",
           "wait_async_save", "ParamDictFuture"]

wait_async_save = ckpt_io.wait_async_save
_FORMATS = CHECKPOINT_FORMATS     # what MindSpore's format= takes (the registry holds more)


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


def _check_save_options(format, integrated_save, async_save, enc_key, enc_mode, crc_check, remove_redundancy,
                        incremental, global_step_num):
    if not isinstance(integrated_save, bool):
        raise TypeError(f"For 'save_checkpoint', 'integrated_save' must be a bool, got {integrated_save!r}")
    if not isinstance(async_save, (bool, str)):
        raise TypeError(f"For 'save_checkpoint', 'async_save' must be a bool or str, got {async_save!r}")
    if isinstance(async_save, str) and async_save not in ("process", "thread"):
        raise ValueError(f"For 'save_checkpoint', 'async_save' can only be 'process' or 'thread', got {async_save!r}")
    check_isinstance("save_checkpoint", "enc_key", enc_key, (type(None), bytes))
    check_isinstance("save_checkpoint", "enc_mode", enc_mode, str)
    check_isinstance("save_checkpoint", "crc_check", crc_check, bool)
    check_isinstance("save_checkpoint", "remove_redundancy", remove_redundancy, (type(None), bool))
    if format == "safetensors" and (enc_key is not None or enc_mode != "AES-GCM"):
        raise ValueError("For 'save_checkpoint', format='safetensors' cannot be encrypted: leave "
                         "enc_key=None and enc_mode='AES-GCM'")
    for name, value, default in (("incremental", incremental, False), ("global_step_num", global_step_num, None)):
        if format == "safetensors" and value != default:       # MindSpore's rule for safetensors
            raise ValueError(f"For 'save_checkpoint', when format is 'safetensors', the parameter '{name}' "
                             f"must be set to default value '{default}', but got '{value}'.")
    if enc_key is not None and crc_check:
        raise ValueError("For 'save_checkpoint', enc_key and crc_check=True cannot be combined "
                         "(MindSpore cannot load such a file); use one of them")
    if enc_key is not None:
        crypto.encrypt(b"", enc_key, enc_mode)       # validates key length and mode up front


def save_checkpoint(save_obj, ckpt_file_name, integrated_save=True, async_save=False, append_dict=None,
                    enc_key=None, enc_mode="AES-GCM", choice_func=None, crc_check=False, format="ckpt",
                    *, fsync=True, remove_redundancy=None, incremental=False, global_step_num=None, **kwargs):
    """Save ``save_obj`` (a Cell, a list of Parameters or ``{"name", "data"}`` dicts, or a dict
    name -> Parameter/Tensor/array) to ``ckpt_file_name``, as MindSpore 2.10 does. A plain
    ``flax.nnx.Module`` is saved under MindSpore's names and layouts (``nnx_parameters``).

    The write is atomic (temporary file, flush, ``fsync`` unless ``fsync=False``, rename).
    ``async_save=True | "thread" | "process"`` returns an ``AsyncSave`` handle once a host snapshot
    exists; ``.result()`` waits and re-raises. Otherwise returns None.

    MindSpore's keyword options: ``remove_redundancy`` (None or bool; recorded in a safetensors
    file's metadata as "True"/"False", as MindSpore does); ``incremental`` and ``global_step_num``
    (MindSpore uses them only for MapParameters, which msjax does not save: accepted, and like
    MindSpore refused with format="safetensors" unless default). ``integrated_save`` merges
    parameters split across devices; one device holds them whole, so it changes nothing here.
    Other keywords are ignored, as in MindSpore, with a warning once per name.

    >>> save_checkpoint(net, "net.ckpt", append_dict={"epoch_num": 3}, crc_check=True)
    """
    path = _check_file_name(ckpt_file_name, format)
    _check_save_options(format, integrated_save, async_save, enc_key, enc_mode, crc_check, remove_redundancy,
                        incremental, global_step_num)
    for key in kwargs:                  # MindSpore ignores unknown keywords; msjax says so, once each
        warn_ignored("save_checkpoint", repr(key), "it is not a keyword argument MindSpore 2.10 reads")
    if nnx_interop.is_plain_module(save_obj):     # MindSpore's names and layouts (nnx_interop)
        save_obj = nnx_interop.nnx_parameters(save_obj)
    # a thread needs its own copy of mutable (numpy) arrays; a forked process gets a
    # copy-on-write snapshot of the whole memory for free, and jax arrays are immutable
    named, types = items.snapshot(items.entries(save_obj, choice_func, append_dict),
                                  copy=async_save in (True, "thread"))
    target = formats.get(format)

    def job():
        target.write(path, named, types, enc_key=enc_key, enc_mode=enc_mode, crc_check=crc_check,
                     fsync=fsync, remove_redundancy=remove_redundancy)

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
            named, types = formats.get(format).read(path, select=select, dec_key=dec_key, dec_mode=dec_mode,
                                                    crc_check=crc_check)
            if not named:
                raise CheckpointError("the loaded parameter dict is empty (empty file, or "
                                      "filter_prefix/specify_prefix/choice_func selected "
                                      "nothing)", file=path)
            parameter_dict = items.to_parameters(named, types, path)
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
    known = isinstance(ckpt_file_name, (str, os.PathLike))
    format = formats.by_suffix(ckpt_file_name).name if known else "ckpt"
    format = format if format in _FORMATS else "ckpt"      # MindSpore's two; load_checkpoint says the rest
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
