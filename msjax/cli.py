"""The ``msjax`` command: inspect, diff and convert checkpoints; export model-zoo networks.

    msjax inspect lenet5.ckpt
    msjax diff a.ckpt b.ckpt
    msjax convert resnet50.pth resnet50.ckpt        # PyTorch state dict -> MindSpore .ckpt
    msjax convert lenet5.ckpt lenet5.safetensors    # .ckpt <-> .safetensors
    msjax export lenet5 --ckpt lenet5.ckpt --input-shape 1,1,32,32 --format ONNX out/lenet5
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from msjax.common.formats import CHECKPOINT_FORMATS, CIPHER_MODES, EXPORT_FORMATS
from msjax.errors import MsjaxError


def _format_of(path):
    """The checkpoint format named by ``path``'s suffix (".safetensors"), else "ckpt"."""
    return next((f for f in CHECKPOINT_FORMATS if str(path).endswith("." + f)), CHECKPOINT_FORMATS[0])


def _load(path, dec_key=None, dec_mode=CIPHER_MODES[0]):
    from msjax.checkpoint import load_checkpoint

    key = dec_key.encode() if dec_key else None
    return load_checkpoint(path, dec_key=key, dec_mode=dec_mode, format=_format_of(path))


def _inspect(args):
    params = _load(args.file, args.dec_key, args.dec_mode)
    total = 0
    for name, value in params.items():
        if isinstance(value, str):
            print(f"{name}\tstr\t{value!r}")
            continue
        total += int(np.prod(value.shape))
        print(f"{name}\t{list(value.shape)}\t{value.dtype}")
    print(f"# {len(params)} entries, {total:,} values")


def _diff(args):
    a, b = _load(args.a), _load(args.b)
    differences = 0
    for name in list(a) + [n for n in b if n not in a]:
        if name not in b or name not in a:
            print(f"{'-' if name not in b else '+'} {name}")
            differences += 1
            continue
        x, y = a[name], b[name]
        if isinstance(x, str) or isinstance(y, str):
            same = x == y
        else:
            x, y = x.asnumpy(), y.asnumpy()
            same = x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)
        if not same:
            print(f"~ {name}")
            differences += 1
    print(f"# {differences} difference(s)")
    return 1 if differences else 0


def _convert(args):
    from msjax.checkpoint import save_checkpoint
    from msjax.checkpoint.torch_format import convert_torch_checkpoint

    if str(args.src).endswith((".pth", ".pt", ".bin")):
        mapping = convert_torch_checkpoint(args.src, args.dst, format=_format_of(args.dst))
        renamed = sum(1 for k, v in mapping.items() if v and v != k)
        dropped = sum(1 for v in mapping.values() if v is None)
        print(f"# {len(mapping) - dropped} tensors written, {renamed} renamed, {dropped} dropped -> {args.dst}")
        return
    save_checkpoint(_load(args.src), args.dst, format=_format_of(args.dst))
    print(f"# {args.src} -> {args.dst}")


def _export(args):
    import msjax
    from msjax import models

    builders = {"lenet5": models.LeNet5, "resnet50": models.ResNet50}
    net = builders[args.model.lower()]()
    if args.ckpt:
        msjax.load_checkpoint(args.ckpt, net=net, strict_load=True)
    shape = tuple(int(d) for d in args.input_shape.split(","))
    msjax.export(net, msjax.Tensor(np.zeros(shape, np.float32)), file_name=args.file_name,
                 file_format=args.format)
    print(f"# exported {args.model} as {args.format} -> {args.file_name}")


def build_parser():
    parser = argparse.ArgumentParser(prog="msjax", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="list a checkpoint's names, shapes and dtypes in file order")
    p.add_argument("file")
    p.add_argument("--dec-key", help="key of an encrypted checkpoint (text)")
    p.add_argument("--dec-mode", default=CIPHER_MODES[0], choices=CIPHER_MODES)
    p.set_defaults(run=_inspect)
    p = sub.add_parser("diff", help="compare two checkpoints entry by entry (exit 1 if they differ)")
    p.add_argument("a")
    p.add_argument("b")
    p.set_defaults(run=_diff)
    p = sub.add_parser("convert", help="PyTorch .pth/.pt -> .ckpt, or .ckpt <-> .safetensors")
    p.add_argument("src")
    p.add_argument("dst")
    p.set_defaults(run=_convert)
    p = sub.add_parser("export", help="export a model-zoo network to MINDIR, AIR or ONNX")
    p.add_argument("model", choices=["lenet5", "resnet50"])
    p.add_argument("file_name")
    p.add_argument("--ckpt", help="weights to load first (strict)")
    p.add_argument("--input-shape", required=True, help="e.g. 1,1,32,32")
    p.add_argument("--format", default="MINDIR", choices=EXPORT_FORMATS)
    p.set_defaults(run=_export)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except (MsjaxError, OSError) as err:
        print(f"msjax {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
