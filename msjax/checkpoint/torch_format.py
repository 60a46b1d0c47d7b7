"""PyTorch checkpoints to MindSpore names: a safe reader for ``torch.save`` files and the renames.

``torch.save`` writes a zip archive: ``<root>/data.pkl`` (a pickle of the state dict whose tensors
point at storages by key) and ``<root>/data/<key>`` (each storage's raw little-endian bytes).

The reader trusts no file: ``torch_zip`` checks every zip entry against the bytes that back it,
``torch_pickle`` unpickles data.pkl with a restricted pure-Python unpickler that resolves only the
globals a state dict needs (so a file cannot run code) and bounds what the pickle may build. A
malformed file raises ``CheckpointError`` naming the file and the cause. torch itself is not needed.

Layouts need no change: MindSpore, like PyTorch, stores Conv2d weights OIHW and Dense weights
(out, in). Only names differ. Each msjax layer declares its own: ``TORCH_NAMES`` (MindSpore
parameter <- PyTorch state-dict key, e.g. LayerNorm's ``gamma`` <- ``weight``, Embedding's
``embedding_table`` <- ``weight``) and ``TORCH_DROPPED`` (torch-only keys, BatchNorm's
``num_batches_tracked``). Given the msjax network (``net=``) names follow those declarations
exactly. Without one a heuristic renames what names and shapes can tell: layers with
``running_mean`` (BatchNorm) and layers whose only parameters are a same-shaped ``weight`` and
``bias`` (LayerNorm, GroupNorm, InstanceNorm), through ``RENAMES``; everything else, Embedding
included (its ``weight`` looks like a bias-free Linear's), keeps its name.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

# the unpickler's limits, importable here as before (set them on torch_pickle to change them)
from msjax.checkpoint.torch_pickle import (COPY_FACTOR, MAX_PICKLE_MARKS, OBJECT_FACTOR,  # noqa: F401
                                           StateDictUnpickler)
from msjax.checkpoint.torch_zip import ZIP_ERRORS, archive_root, open_archive, read_entry
from msjax.common.untrusted import reading
from msjax.errors import CheckpointError

__all__ = ["read_torch_state_dict", "sniff", "torch_to_mindspore_names", "names_of_net", "convert_torch_checkpoint"]

#: the no-network heuristic's suffix renames for normalisation layers (which layers those are:
#: ``torch_to_mindspore_names``); the same as msjax's BatchNorm declares in ``TORCH_NAMES``
RENAMES = {"running_mean": "moving_mean", "running_var": "moving_variance", "weight": "gamma", "bias": "beta"}
#: torch-only bookkeeping that MindSpore has no parameter for (the heuristic drops it anywhere)
DROPPED_SUFFIXES = ("num_batches_tracked",)

#: the largest data.pkl read (torch writes ~100 bytes a tensor)
MAX_PICKLE_BYTES = 64 << 20
#: the deepest nesting of ``{'state_dict': {...}}`` wrappers looked through
MAX_NESTING = 16

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
#: what ``torch.save(..., _use_new_zipfile_serialization=False)`` starts with: protocol 2, LONG1 magic
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
_ZIP_MAGIC = b"PK\x03\x04"


# ---------------------------------------------------------------- reading


def sniff(path) -> bool:
    """Whether ``path`` is a ``torch.save`` file: a zip holding ``<root>/data.pkl``, or a legacy
    (pre-1.6, non-zip) pickle, which ``read_torch_state_dict`` then refuses by name. Never raises.

    >>> sniff("resnet50.pth")                                   # doctest: +SKIP
    True
    """
    try:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as f:
            head = f.read(64)
        if head.startswith(_LEGACY_MAGIC):
            return True
        if not head.startswith(_ZIP_MAGIC):
            return False
        name_len = int.from_bytes(head[26:28], "little")     # torch.save writes data.pkl first
        if head[30:30 + name_len].endswith(b"/data.pkl"):
            return True
        with open_archive(path) as archive:
            return any(name.endswith("/data.pkl") for name in archive.namelist())
    except (CheckpointError, *ZIP_ERRORS):
        return False


def _unpickle(archive, path):
    archive_size = os.path.getsize(path)
    infos = {info.filename: info for info in archive.infolist()}
    root = archive_root(infos, path)
    byteorder = infos.get(f"{root}/byteorder")
    if byteorder is not None and read_entry(archive, byteorder, archive_size, path, 16).strip() != b"little":
        raise CheckpointError("big-endian PyTorch checkpoints are not supported", file=path)
    data = read_entry(archive, infos[f"{root}/data.pkl"], archive_size, path, MAX_PICKLE_BYTES,
                      " (torch_format.MAX_PICKLE_BYTES; torch pickles ~100 bytes a tensor)")
    return StateDictUnpickler(data, archive, infos, root, path, archive_size).load_state()


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
        with open_archive(path) as archive:
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


def _heuristic_names(names, shapes, renames):
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


def names_of_net(net):
    """``{torch name: MindSpore name, or None to drop}`` from the layers' declarations in ``net``.

    Each cell's own Parameters are named by its ``TORCH_NAMES`` (MindSpore attribute <- PyTorch
    key; a name it does not list is the same in both), and its ``TORCH_DROPPED`` keys map to None.
    A cell with ``TORCH_INLINE = True`` has its keys named at its parent's level; a cell's
    ``TORCH_CHILDREN`` renames its sub-cells (TransformerEncoderLayer's ``dense1`` is ``linear1``).
    A Parameter shared by several cells keeps its first name; the later keys (PyTorch's tied
    copies) map to None.
    """
    if not (hasattr(net, "cells_and_names") and hasattr(net, "parameters_and_names")):
        raise TypeError(f"net= must be an msjax Cell (the network the weights are for), not "
                        f"{type(net).__name__}")
    expected, seen, torch_paths = OrderedDict(), set(), {}
    for cell_name, cell in net.cells_and_names():      # parents come before their children
        declared = getattr(cell, "TORCH_NAMES", {})
        base = torch_paths.get(cell_name, cell_name)
        for attr, child in cell.name_cells().items():
            renamed = getattr(cell, "TORCH_CHILDREN", {}).get(attr, attr)
            inline = getattr(child, "TORCH_INLINE", False)   # a helper child (BatchNorm3d's bn2d)
            torch_paths.setdefault(f"{cell_name}.{attr}" if cell_name else attr,
                                   base if inline else (f"{base}.{renamed}" if base else renamed))
        prefix = f"{base}." if base else ""
        for attr, param in cell.parameters_and_names(expand=False):
            expected[prefix + declared.get(attr, attr)] = None if id(param) in seen else param.name
            seen.add(id(param))
        for key in getattr(cell, "TORCH_DROPPED", ()):
            expected[prefix + key] = None
    return expected


def torch_to_mindspore_names(names, renames=None, *, net=None):
    """Map PyTorch state-dict names to MindSpore names; dropped names map to None.

    ``names`` is a list of names or the state dict itself (name -> array).

    With ``net`` (the msjax network the weights are for) each name is the one its layer declares
    (``TORCH_NAMES``/``TORCH_DROPPED``): exact for every layer, LayerNorm and Embedding included.
    A name the network has no parameter for keeps its name, so ``load_param_into_net`` reports it.

    Without ``net`` normalisation layers get their suffixes renamed by ``renames`` (default
    ``RENAMES``): a layer is one when it has ``running_mean`` (BatchNorm) or, given the state dict,
    when its only parameters are a ``weight`` and a ``bias`` of the same shape (LayerNorm,
    GroupNorm, InstanceNorm -> gamma/beta). Everything else keeps its name, Embedding's ``weight``
    included (MindSpore: ``embedding_table``), since names and shapes cannot tell it from a Linear
    without bias: pass ``net=``.

    >>> torch_to_mindspore_names(["bn1.weight", "bn1.running_mean", "fc.weight"])
    OrderedDict({'bn1.weight': 'bn1.gamma', 'bn1.running_mean': 'bn1.moving_mean', 'fc.weight': 'fc.weight'})
    >>> torch_to_mindspore_names(["emb.weight"], net=net)      # doctest: +SKIP
    OrderedDict({'emb.weight': 'emb.embedding_table'})
    """
    shapes = {n: tuple(np.shape(v)) for n, v in names.items()} if isinstance(names, Mapping) else None
    names = list(names)
    if net is None:
        return _heuristic_names(names, shapes, RENAMES if renames is None else renames)
    if renames is not None:
        raise CheckpointError("torch_to_mindspore_names: pass renames= (the heuristic's suffix table) or "
                              "net= (the layers' own names), not both")
    expected = names_of_net(net)
    return OrderedDict((name, expected.get(name, name)) for name in names)


def convert_torch_checkpoint(src, dst, *, net=None, renames=None, **save_kwargs):
    """Convert a PyTorch state dict file to a MindSpore .ckpt; return ``{torch_name: ms_name}``.

    ``net`` (the msjax network the weights are for) names every tensor as its layer declares;
    without it the names follow ``torch_to_mindspore_names``' heuristic. ``save_kwargs`` go to
    ``save_checkpoint`` (``format=``, ``crc_check=``, ...).

    >>> convert_torch_checkpoint("resnet50.pth", "resnet50.ckpt")   # doctest: +SKIP
    >>> convert_torch_checkpoint("tiny.pth", "tiny.ckpt", net=TinyNet())   # doctest: +SKIP
    """
    if net is not None and renames is not None:
        raise CheckpointError("pass renames= (the heuristic's suffix table) or net= (the layers' own "
                              "names), not both", file=src)
    from msjax.checkpoint.serialization import save_checkpoint   # jax: reading needs none

    state = read_torch_state_dict(src)
    mapping = torch_to_mindspore_names(state, renames, net=net)
    records = [{"name": ms_name, "data": state[t_name]} for t_name, ms_name in mapping.items() if ms_name]
    save_checkpoint(records, str(dst), **save_kwargs)
    return mapping
