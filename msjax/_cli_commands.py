"""What each ``msjax`` command does (the parser and the error contract are ``msjax.cli``).

The file commands (inspect, diff, convert) go through ``msjax.checkpoint.raw``: numpy arrays, no
jax. ``export`` builds a network, so it imports the rest of msjax when it runs; so does an orbax
directory (orbax needs jax).
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from collections import OrderedDict

import numpy as np

from msjax._cli_diff import compare
from msjax.checkpoint import raw
from msjax.errors import MsjaxError

__all__ = ["inspect", "diff", "convert", "export", "dec_options", "progress"]


def dec_options(args, side=""):
    """(dec_key bytes or None, dec_mode) from ``--dec-key``/``--dec-key-hex``/``--dec-mode``;
    ``side`` ("a"/"b") looks at ``--a-...``/``--b-...`` first (diff's per-file keys)."""
    prefix = f"{side}_" if side else ""
    text, hexed = getattr(args, f"{prefix}dec_key", None), getattr(args, f"{prefix}dec_key_hex", None)
    mode = getattr(args, f"{prefix}dec_mode", None)
    if side and text is None and hexed is None:
        text, hexed = args.dec_key, args.dec_key_hex
    mode = mode or args.dec_mode
    if hexed is not None:
        flag = f"--{side + '-' if side else ''}dec-key-hex"
        try:
            key = bytes.fromhex(hexed)
        except ValueError:
            raise ValueError(f"{flag}: not a hex string: {hexed!r}") from None
        if not key:
            raise ValueError(f"{flag}: the key is empty")
        return key, mode
    return (text.encode() if text else None), mode


@contextlib.contextmanager
def progress(args, total, desc):
    """A tqdm bar on stderr (off with --quiet or when stderr is not a terminal); ``step(label)``
    advances it. tqdm is imported only when the bar shows."""
    show = not args.quiet and sys.stderr.isatty()
    if not show:
        yield lambda label: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, file=sys.stderr, unit="step", leave=False) as bar:
        def step(label):
            bar.set_postfix_str(label)
            bar.update(1)
        yield step


def _read(path, args, side=""):
    key, mode = dec_options(args, side)
    return raw.read(path, dec_key=key, dec_mode=mode)


def _entries(named, types):
    """JSON rows: name, dtype, shape (or value for str entries), stored dtype where it says more."""
    rows = []
    for name, value in named.items():
        if isinstance(value, str):
            rows.append({"name": name, "dtype": "str", "value": value})
            continue
        row = {"name": name, "dtype": raw.dtype_name(value), "shape": list(value.shape)}
        if name in types:
            row["stored_dtype"] = types[name]
        rows.append(row)
    return rows


def inspect(args):
    named, types = _read(args.file, args)
    total = sum(int(np.prod(v.shape)) for v in named.values() if not isinstance(v, str))
    if args.json:
        nbytes = sum(v.nbytes for v in named.values() if not isinstance(v, str))
        print(json.dumps({"file": args.file, "format": raw.format_of(args.file).name,
                          "entries": _entries(named, types),
                          "total": {"entries": len(named), "values": total, "bytes": nbytes}}, indent=1))
        return 0
    for name, value in named.items():
        if isinstance(value, str):
            print(f"{name}\tstr\t{value!r}")
        else:
            print(f"{name}\t{list(value.shape)}\t{raw.dtype_name(value)}")
    print(f"# {len(named)} entries, {total:,} values")
    return 0


def diff(args):
    a, _ = _read(args.a, args, "a")
    b, _ = _read(args.b, args, "b")
    lines = compare(a, b)
    for line in lines:
        print(line)
    print(f"# {len(lines)} difference(s)")
    return 1 if lines else 0


def convert(args):
    src_format = raw.format_of(args.src)
    dst_format = raw.format_of(args.dst, writing=True)      # refuse an unknown target before reading
    with progress(args, 2, "convert") as step:
        if src_format.name == "torch":
            return _convert_torch(args, step, dst_format.name)
        key, mode = dec_options(args)
        named, types = raw.read(args.src, format=src_format.name, dec_key=key, dec_mode=mode)
        step("read")
        raw.write(os.path.realpath(args.dst), named, types, format=dst_format.name)
        step("written")
    print(f"# {args.src} -> {args.dst}")
    return 0


def _convert_torch(args, step, dst_format):
    from msjax.checkpoint.torch_format import read_torch_state_dict, torch_to_mindspore_names

    if args.dec_key is not None or args.dec_key_hex is not None:
        raise ValueError(f"--dec-key: {args.src} is a PyTorch file, which is never encrypted")
    state = read_torch_state_dict(args.src)
    mapping = torch_to_mindspore_names(state)
    step("read")
    named = OrderedDict()
    for t_name, ms_name in mapping.items():
        if ms_name:
            named[ms_name] = state[t_name]
    raw.write(os.path.realpath(args.dst), named, format=dst_format)
    step("written")
    renamed = sum(1 for k, v in mapping.items() if v and v != k)
    dropped = sum(1 for v in mapping.values() if v is None)
    print(f"# {len(mapping) - dropped} tensors written, {renamed} renamed, {dropped} dropped -> {args.dst}")
    return 0


def input_shape(text) -> tuple:
    """``--input-shape``'s "1,1,32,32" as a tuple of positive ints; a ValueError naming it."""
    try:
        shape = tuple(int(d) for d in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(f"--input-shape: expected positive integers separated by commas, such as "
                         f"1,1,32,32; got {text!r}")
    return shape


def export(args):
    shape = input_shape(args.input_shape)
    ckpt_format = raw.format_of(args.ckpt) if args.ckpt else None
    if ckpt_format is not None and ckpt_format.name not in ("ckpt", "safetensors"):
        raise ValueError(f"--ckpt: give a .ckpt or .safetensors file, got {args.ckpt!r}")
    with progress(args, 3, "export") as step:
        import msjax
        from msjax import models

        net = {"lenet5": models.LeNet5, "resnet50": models.ResNet50}[args.model.lower()]()
        step("built")
        if args.ckpt:
            key, mode = dec_options(args)
            params = msjax.load_checkpoint(args.ckpt, dec_key=key, dec_mode=mode, format=ckpt_format.name)
            missing, _ = msjax.load_param_into_net(net, params, strict_load=True)
            if missing:
                raise ValueError(f"--ckpt {args.ckpt}: {len(missing)} of {args.model}'s parameters are "
                                 f"not in the file ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); "
                                 f"is it a {args.model} checkpoint?")
        step("loaded")
        example = msjax.Tensor(np.zeros(shape, np.float32))
        try:
            msjax.export(net, example, file_name=args.file_name, file_format=args.format)
        except (MsjaxError, OSError):
            raise
        except (TypeError, ValueError) as err:        # what tracing the network on a wrong shape raises
            first = (str(err).strip().splitlines() or [""])[0]
            raise ValueError(f"--input-shape {args.input_shape}: {args.model} cannot take an input of "
                             f"shape {shape} ({type(err).__name__}: {first})") from err
        step("exported")
    print(f"# exported {args.model} as {args.format} -> {args.file_name}")
    return 0
