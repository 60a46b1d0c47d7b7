"""The readers under test: name -> how to load one file (each returns what the reader returns).

Every entry is a public msjax entry point called as a user would; a GraphCell/AirGraph is built
(never run on inputs).
"""
from __future__ import annotations

from .seeds import KEYS, SEEDS

READERS = tuple(SEEDS)


def _ckpt(path, **kwargs):
    import msjax
    return msjax.load_checkpoint(path, **kwargs)


def _mindir(path):
    import msjax
    return msjax.nn.GraphCell(msjax.load(path))


def _air(path):
    from exporters import from_air
    return from_air.load(path)


def _graph_meta(path):
    from exporters.graph_meta import read_graph_meta
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
    raise KeyError(f"unknown reader {reader!r}; known: {', '.join(READERS)}")


def suffix(reader: str) -> str:
    """The file suffix ``reader`` needs (taken from its seed's name)."""
    name = SEEDS[reader]
    return name[name.index("-graph.meta"):] if reader == "graph_meta" else name[name.rindex("."):]
