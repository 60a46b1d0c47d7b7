"""The readers under test: name -> how to load one file (each returns what the reader returns).

Every entry is a public msjax entry point called as a user would; a GraphCell/AirGraph is built,
not run. The opt-in ``mindir_run`` / ``air_run`` also run the built graph once on zeros (op by
op, no jit) when its inputs are static and small; their case N is the file of mindir/air case N.
"""
from __future__ import annotations

import numpy as np

from .seeds import KEYS, SEEDS

READERS = tuple(SEEDS)
#: opt-in readers (not in "all"): construction plus one eager run -> the reader whose files they use
EXTRA = {"mindir_run": "mindir", "air_run": "air"}
MAX_INPUT = 4096          # elements per input, beyond which a graph is only built


def base(reader: str) -> str:
    """The reader whose seed and mutations ``reader`` uses."""
    return EXTRA.get(reader, reader)


def _zeros(specs):
    """Zero inputs for static, small (shape, dtype) specs; None when a graph should not run."""
    arrays = []
    for shape, dtype in specs:
        if shape is None or dtype is None or any(int(d) < 0 for d in shape):
            return None
        if int(np.prod(shape, dtype=object)) > MAX_INPUT:
            return None
        arrays.append(np.zeros(tuple(int(d) for d in shape), dtype))
    return arrays


def _mindir_run(path):
    import msjax
    msjax.set_context(mode=msjax.PYNATIVE_MODE)         # op by op: nothing is compiled whole
    cell = _mindir(path)
    inputs = _zeros([(shape, dtype) for _, shape, dtype in cell._graph.inputs])
    if inputs is not None:
        cell(*[msjax.Tensor(x) for x in inputs])
    return cell


def _air_run(path):
    from msjax_exporters import from_air
    graph = from_air.load(path, jit=False)
    inputs = _zeros([(shape, dtype) for _, shape, dtype in graph.inputs])
    if inputs is not None:
        graph(*inputs)
    return graph


def _ckpt(path, **kwargs):
    import msjax
    return msjax.load_checkpoint(path, **kwargs)


def _mindir(path):
    import msjax
    return msjax.nn.GraphCell(msjax.load(path))


def _mindir_enc(path):
    import msjax
    key, mode = KEYS["mindir_enc"]
    return msjax.nn.GraphCell(msjax.load(path, dec_key=key, dec_mode=mode))


def _air(path):
    from msjax_exporters import from_air
    return from_air.load(path)


def _graph_meta(path):
    from msjax_exporters.graph_meta import read_graph_meta
    return read_graph_meta(path)


def _pth(path):
    from msjax.checkpoint.torch_format import read_torch_state_dict
    return read_torch_state_dict(path)


def load(reader: str, path: str):
    """Run ``reader`` on ``path``."""
    if reader == "ckpt":
        return _ckpt(path)
    if reader == "ckpt_crc":
        return _ckpt(path, crc_check=True)
    if reader == "mindir_enc":
        return _mindir_enc(path)
    if reader in KEYS:
        key, mode = KEYS[reader]
        return _ckpt(path, dec_key=key, dec_mode=mode)
    if reader == "safetensors":
        return _ckpt(path, format="safetensors")
    if reader == "mindir":
        return _mindir(path)
    if reader == "air":
        return _air(path)
    if reader == "graph_meta":
        return _graph_meta(path)
    if reader == "pth":
        return _pth(path)
    if reader == "mindir_run":
        return _mindir_run(path)
    if reader == "air_run":
        return _air_run(path)
    raise KeyError(f"unknown reader {reader!r}; known: {', '.join(READERS + tuple(EXTRA))}")


def suffix(reader: str) -> str:
    """The file suffix ``reader`` needs (taken from its seed's name)."""
    reader = base(reader)
    name = SEEDS[reader]
    return name[name.index("-graph.meta"):] if reader == "graph_meta" else name[name.rindex("."):]
