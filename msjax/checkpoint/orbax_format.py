"""The sharded, multi-device checkpoint path: MindSpore-named parameters in an orbax directory.

``save_orbax`` writes one orbax PyTree checkpoint whose keys are MindSpore's dotted names
(``{"conv1.weight": array, ...}``). Each ``jax.Array`` is written shard by shard from the devices
that hold it (its sharding is recorded, nothing is gathered onto one host array); host numpy arrays
are written as they are. orbax's step metadata (``custom_metadata["msjax"]``) keeps what orbax's
tree does not: MindSpore's save order, ``str`` entries and stored dtype strings (``Int4``), so
``.ckpt -> orbax -> .ckpt`` gives the same bytes.

``load_orbax`` reads each array straight onto a sharding: the one given in ``shardings``, else
that of the net's current parameter value, else a host numpy array. orbax is imported on first use.

>>> save_orbax(net, "ckpt/step_100")
>>> param_dict = load_orbax("ckpt/step_100", net)      # onto the net's current shardings
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict

import jax
import numpy as np

from msjax.checkpoint import io as ckpt_io
from msjax.checkpoint import items
from msjax.checkpoint.matching import load_param_into_net
from msjax.checkpoint.names import path_to_name
from msjax.checkpoint.serialization import load_checkpoint, save_checkpoint
from msjax.common import atomic
from msjax.common import dtype as mstype
from msjax.errors import CheckpointError, ParameterLoadError

__all__ = ["save_orbax", "load_orbax", "ckpt_to_orbax", "orbax_to_ckpt", "NAME", "SUFFIXES", "sniff", "read",
           "write"]

NAME = "orbax"
SUFFIXES = ()                # a directory: found by its content (sniff), not by a suffix
#: what orbax raises for a failed write or read: tensorstore reports OS errors as ValueErrors
_ORBAX_ERRORS = (OSError, ValueError)

_META_KEY = "msjax"          # custom_metadata entry: {"names": [...], "strings": {}, "types": {}}
_TREE_FILE = "_METADATA"     # orbax's PyTree metadata file; its absence means "not a PyTree checkpoint"


def _ocp():
    import orbax.checkpoint as ocp  # ~1.5 s to import: only when an orbax checkpoint is touched
    return ocp


# --------------------------------------------------------------------------- save

def _snapshot(save_obj, directory, copy, append_dict=None):
    """The orbax tree (name -> jax/numpy array, sharding kept) and msjax's metadata."""
    named, types = items.snapshot(items.entries(save_obj, None, append_dict), copy=copy, keep_device=True,
                                  caller="save_orbax")
    return _tree(named, types, directory)


def _tree(named, types, directory):
    tree = {n: v for n, v in named.items() if not isinstance(v, str)}
    if not tree:
        raise CheckpointError("nothing to save: save_obj holds no arrays", file=directory)
    strings = {n: v for n, v in named.items() if isinstance(v, str)}
    return tree, {"names": list(named), "strings": strings, "types": dict(types)}


def _close(checkpointer):
    try:
        checkpointer.wait_until_finished()      # re-raises the background write's error
    finally:
        checkpointer.close()


def _raise_write_failure(err, path):
    """Raise the msjax write error for an orbax failure (tensorstore reports OS errors as
    ValueErrors carrying ``os_error_code='N'``); anything else is re-raised unchanged."""
    if isinstance(err, OSError):
        raise atomic.write_error(err, path) from err
    found = re.search(r"os_error_code='?(\d+)", str(err))
    if found is None:
        raise err
    code = int(found.group(1))
    raise atomic.write_error(OSError(code, os.strerror(code)), path) from err


def _finish(checkpointer, staging, path):
    """Wait for orbax, then move the finished checkpoint from ``staging`` onto ``path``.

    orbax's own ``force=True`` deletes the old directory before writing. Here orbax writes inside
    a locked msjax temporary directory beside ``path``; the result replaces ``path`` by one atomic
    exchange (renameat2 RENAME_EXCHANGE; two renames where the OS lacks it), so a failed or killed
    save leaves the previous checkpoint in place, and its leftovers are cleaned by the next save.
    """
    built = os.path.join(staging.path, "checkpoint")
    try:
        _close(checkpointer)
        if os.path.exists(path):
            atomic.exchange(built, path)        # the old checkpoint is now at ``built``
        else:
            os.rename(built, path)
    except _ORBAX_ERRORS as err:
        _raise_write_failure(err, path)
    finally:
        staging.close()
    atomic.fsync_dir(os.path.dirname(path))


def _abandon(checkpointer, staging):
    """Close a checkpointer whose save failed and remove its staging directory."""
    try:
        checkpointer.close()      # may re-raise the same failure; the first one is reported
    except _ORBAX_ERRORS:
        pass
    finally:
        staging.close()


def save_orbax(save_obj, directory, *, async_save=False, force=False, append_dict=None):
    """Save ``save_obj`` (a Cell, a list of Parameters or ``{"name", "data"}`` dicts, or a dict
    name -> Parameter/Tensor/array) as an orbax PyTree checkpoint keyed by MindSpore names.

    Sharded ``jax.Array`` values are written per shard, with their sharding. ``force=True``
    replaces an existing ``directory``, only once the new checkpoint is complete. ``async_save=True`` returns an ``AsyncSave`` handle once
    the arrays are snapshotted; ``.result()`` waits for the commit and re-raises its error.
    ``append_dict`` adds entries as ``save_checkpoint``'s does.

    Under ``jax.distributed`` (several processes) every process calls it with the same
    ``directory``: each writes the shards it holds, and orbax's own commit (a temporary directory
    renamed by process 0 once all have written) makes it appear whole; ``force=True`` there lets
    orbax remove the old directory first, and the save is synchronous.

    >>> save_orbax(net, "/tmp/lenet_orbax", force=True)
    """
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"For 'save_orbax', 'directory' must be a str or path, got {type(directory).__name__}")
    if not isinstance(async_save, bool):
        raise TypeError(f"For 'save_orbax', 'async_save' must be a bool, got {async_save!r}")
    path = os.path.abspath(os.fspath(directory))
    ckpt_io.wait_for(path)                     # an earlier async save to the same directory
    if os.path.exists(path) and not force:
        raise CheckpointError("the checkpoint directory already exists; pass force=True to replace it",
                              file=path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise CheckpointError("exists and is not a directory; orbax checkpoints are directories", file=path)
    tree, meta = _snapshot(save_obj, path, copy=async_save, append_dict=append_dict)
    return _save_tree(tree, meta, path, async_save)


def _save_multiprocess(tree, meta, path):
    """Every process writes its shards into ``path`` through orbax's own atomic commit (the
    staging directory of ``_save_tree`` is per process, so it cannot be shared)."""
    checkpointer = _ocp().StandardCheckpointer()
    try:
        checkpointer.save(path, tree, custom_metadata={_META_KEY: meta}, force=True)
        _close(checkpointer)
    except _ORBAX_ERRORS as err:
        _raise_write_failure(err, path)


def _save_tree(tree, meta, path, async_save):
    if jax.process_count() > 1:
        return _save_multiprocess(tree, meta, path)
    try:
        staging = atomic.LockedTempDir(path)
    except OSError as err:
        raise atomic.write_error(err, path) from err
    checkpointer = _ocp().StandardCheckpointer()
    started = False
    try:
        checkpointer.save(os.path.join(staging.path, "checkpoint"), tree,
                          custom_metadata={_META_KEY: meta})
        started = True
    except _ORBAX_ERRORS as err:
        _raise_write_failure(err, path)
    finally:
        if not started:               # whatever stopped it, nothing is left behind
            _abandon(checkpointer, staging)
    if async_save:
        return ckpt_io.start_thread(path, lambda: _finish(checkpointer, staging, path))
    _finish(checkpointer, staging, path)
    return None


# --------------------------------------------------------------------------- load

def _stored(path):
    """(name -> (key path, ArrayMetadata) in stored order, tree metadata, strings, types)."""
    if not os.path.isdir(path):
        raise CheckpointError("no such checkpoint directory" if not os.path.exists(path)
                              else "is not a directory; an orbax checkpoint is a directory", file=path)
    if not os.path.isfile(os.path.join(path, _TREE_FILE)):
        raise CheckpointError(f"not an orbax PyTree checkpoint (no {_TREE_FILE} file); save one with "
                              f"save_orbax or ckpt_to_orbax", file=path)
    ocp = _ocp()
    try:
        step = ocp.Checkpointer(ocp.PyTreeCheckpointHandler()).metadata(path)
    except (ValueError, OSError, TypeError) as err:
        raise CheckpointError(f"cannot read the orbax metadata: {err}", file=path) from err
    item = step.item_metadata
    tree = getattr(item, "tree", item)
    if not isinstance(tree, (dict, list, tuple)):
        raise CheckpointError("the orbax checkpoint's tree metadata is missing or unreadable", file=path)
    meta = (step.custom_metadata or {}).get(_META_KEY) or {}
    leaves = OrderedDict()
    for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        leaves[path_to_name(key_path)] = (key_path, leaf)
    order = [n for n in meta.get("names", []) if n in leaves or n in meta.get("strings", {})]
    order += [n for n in leaves if n not in set(order)]
    return order, leaves, tree, meta.get("strings", {}), meta.get("types", {})


def _sharding_for(name, shardings, param):
    if callable(shardings) and not isinstance(shardings, dict):
        found = shardings(name)
    else:
        found = (shardings or {}).get(name)
    if found is None and param is not None and isinstance(param.get_value(), jax.Array):
        found = param.get_value().sharding
    if found is not None and not isinstance(found, jax.sharding.Sharding):
        raise TypeError(f"load_orbax: the sharding for {name!r} must be a jax.sharding.Sharding, got "
                        f"{type(found).__name__}")
    return found


def _restore_args(path, leaves, shardings, params, strict_load):
    """One orbax RestoreArgs per stored array; every shape mismatch with the net raised at once."""
    ocp = _ocp()
    args, bad = {}, []
    for name, (_, leaf) in leaves.items():
        shape, dtype = tuple(leaf.shape), np.dtype(leaf.dtype)
        param = params.get(name)
        if param is not None and tuple(param.shape) != shape:
            found = items.problem(name, name, param.shape, None, shape, None, strict_load, path)
            if found:
                bad.append(found)
            param = None                 # load_param_into_net reshapes it on the host
        if param is not None and not strict_load:
            have = mstype.from_numpy(param.get_value().dtype)
            got = mstype.from_numpy(dtype)
            if have is not got and items.convertible(have, got):
                dtype = np.dtype(have.numpy)     # cast while reading, so the sharding is kept
        sharding = _sharding_for(name, shardings, param)
        if sharding is None:
            args[name] = ocp.RestoreArgs(restore_type=np.ndarray, dtype=dtype)
        else:
            args[name] = ocp.ArrayRestoreArgs(sharding=sharding, global_shape=shape, dtype=dtype)
    if bad:
        raise ParameterLoadError(items.problems_message(bad))
    return args


def load_orbax(directory, net=None, *, shardings=None, strict_load=False):
    """Load an orbax checkpoint written by ``save_orbax`` into an ``OrderedDict`` name -> Parameter
    (str entries come back as str), in the net's parameter order when ``net`` is given, else as
    saved; with ``net``, also load it into ``net`` through ``load_param_into_net``.

    Each array is read onto ``shardings[name]`` (a dict name -> ``jax.sharding.Sharding``, or a
    callable name -> Sharding or None), else onto the sharding of the net's current value for that
    name, else as a host numpy array.

    >>> mesh = jax.sharding.Mesh(jax.devices(), ("x",))
    >>> load_orbax("/tmp/lenet_orbax", shardings={"fc1.weight": NamedSharding(mesh, P("x"))})
    """
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"For 'load_orbax', 'directory' must be a str or path, got {type(directory).__name__}")
    if shardings is not None and not (isinstance(shardings, dict) or callable(shardings)):
        raise TypeError(f"For 'load_orbax', 'shardings' must be a dict name -> Sharding or a callable, "
                        f"got {type(shardings).__name__}")
    if not isinstance(strict_load, bool):
        raise TypeError(f"For 'load_orbax', 'strict_load' must be a bool, got {strict_load!r}")
    if net is not None and not hasattr(net, "parameters_and_names"):
        raise TypeError(f"For 'load_orbax', 'net' must be a Cell, got {type(net).__name__}")
    path = os.path.abspath(os.fspath(directory))
    ckpt_io.wait_for(path)
    order, leaves, tree, strings, types = _stored(path)
    if isinstance(shardings, dict):
        unknown = [n for n in shardings if n not in leaves]
        if unknown:
            raise ParameterLoadError(f"{path}: 'shardings' names parameters the checkpoint does not "
                                     f"hold: {unknown}")
    params = OrderedDict((p.name, p) for _, p in net.parameters_and_names()) if net is not None else {}
    args = _restore_args(path, leaves, shardings, params, strict_load)
    restore_args = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(tree), [args[n] for n in leaves])
    ocp = _ocp()
    checkpointer = ocp.Checkpointer(ocp.PyTreeCheckpointHandler())
    try:
        restored = checkpointer.restore(path, args=ocp.args.PyTreeRestore(item=None, restore_args=restore_args))
    except (ValueError, OSError) as err:
        raise CheckpointError(f"cannot restore the orbax checkpoint: {err}", file=path) from err
    finally:
        checkpointer.close()
    values = {path_to_name(key_path): value
              for key_path, value in jax.tree_util.tree_flatten_with_path(restored)[0]}
    if net is not None:
        order = [n for n in params if n in values or n in strings] + [n for n in order if n not in params]
    out = OrderedDict()
    for name in order:
        if name in strings:
            out[name] = strings[name]
            continue
        out[name] = items.parameter(name, values[name], path, types.get(name))
    if net is not None:
        load_param_into_net(net, out, strict_load, _file=path)
    return out


# --------------------------------------------------------------------------- converters

def ckpt_to_orbax(ckpt_file, directory, *, force=False):
    """Convert a MindSpore .ckpt file into an orbax checkpoint directory (names, order, dtypes kept).

    >>> ckpt_to_orbax("lenet5.ckpt", "/tmp/lenet_orbax", force=True)
    """
    save_orbax(load_checkpoint(ckpt_file), directory, force=force)


def orbax_to_ckpt(directory, ckpt_file):
    """Convert an orbax checkpoint directory written by msjax back into a MindSpore .ckpt file.

    >>> orbax_to_ckpt("/tmp/lenet_orbax", "lenet5_again.ckpt")
    """
    save_checkpoint(load_orbax(directory), ckpt_file)


# --------------------------------------------------------------------------- the format interface

def sniff(path) -> bool:
    """True when ``path`` is a directory holding an orbax PyTree checkpoint (its ``_METADATA``)."""
    return os.path.isfile(os.path.join(os.fspath(path), _TREE_FILE))


def read(path, *, select=None, dec_key=None, dec_mode="AES-GCM", crc_check=False):
    """(name -> host array or str in save order, name -> stored dtype string) of the orbax
    checkpoint ``path``; ``select`` picks names after the read. orbax has no encryption or CRC."""
    if dec_key is not None or crc_check:
        raise CheckpointError("an orbax checkpoint has no encryption or crc_num: load it without "
                              "dec_key and crc_check", file=path)
    loaded = load_orbax(path)
    named = OrderedDict((n, v if isinstance(v, str) else v.get_value()) for n, v in loaded.items()
                        if select is None or select(n))
    types = {n: v.get_metadata(items.TYPE_META, None) for n, v in loaded.items() if n in named
             and not isinstance(v, str) and v.get_metadata(items.TYPE_META, None)}
    return named, types


def write(path, named, types, *, enc_key=None, enc_mode="AES-GCM", crc_check=False, fsync=True,
          remove_redundancy=None):
    """Write a snapshot (``items.snapshot``) as an orbax checkpoint directory, replacing ``path``
    once complete. orbax has no encryption or CRC; its writes are always synced."""
    if enc_key is not None or crc_check:
        raise CheckpointError("an orbax checkpoint cannot be encrypted or carry crc_num", file=path)
    path = os.path.abspath(os.fspath(path))
    ckpt_io.wait_for(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise CheckpointError("exists and is not a directory; orbax checkpoints are directories", file=path)
    tree, meta = _tree(named, types, path)
    _save_tree(tree, meta, path, async_save=False)
