"""The ``msjax`` command (also ``python -m msjax``): inspect, diff and convert checkpoints; export
model-zoo networks.

    msjax inspect lenet5.ckpt [--json]
    msjax diff a.ckpt b.safetensors                 # exit 1 if they differ
    msjax convert resnet50.pth resnet50.ckpt        # PyTorch state dict -> MindSpore .ckpt
    msjax convert lenet5.ckpt lenet5.safetensors    # the format follows the suffix
    msjax convert lenet5.ckpt lenet5_orbax/         # a directory is an orbax checkpoint
    msjax export lenet5 --ckpt lenet5.ckpt --input-shape 1,1,32,32 --format ONNX out/lenet5

The file commands import no jax. Every failure is one line on stderr and exit status 2
(``--debug`` shows the traceback).
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback

from msjax.common.formats import CIPHER_MODES, EXPORT_FORMATS

__all__ = ["main", "build_parser"]

MODELS = ("lenet5", "resnet50")


def _add_dec(p, side="", what="the file"):
    """``--dec-key``/``--dec-key-hex``/``--dec-mode`` (``side``: diff's ``--a-``/``--b-`` ones)."""
    flag = f"--{side}-" if side else "--"
    keys = p.add_mutually_exclusive_group()
    keys.add_argument(f"{flag}dec-key", metavar="TEXT", help=f"key of {what} if encrypted, as text")
    keys.add_argument(f"{flag}dec-key-hex", metavar="HEX", help=f"key of {what} if encrypted, in hex")
    p.add_argument(f"{flag}dec-mode", choices=CIPHER_MODES, default=None if side else CIPHER_MODES[0],
                   help=f"cipher of {what} (default: {'--dec-mode' if side else CIPHER_MODES[0]})")


def _command(sub, name, run, help, common, usage):
    p = sub.add_parser(name, help=help, description=help, parents=[common], usage=f"msjax {name} {usage}")
    p.set_defaults(run=run)      # a function of msjax._cli_commands, imported when it runs
    return p


def build_parser():
    """The argument parser (commands run lazily: nothing heavy is imported to build it)."""
    def common(default):
        p = argparse.ArgumentParser(add_help=False)
        p.add_argument("--debug", action="store_true", default=default,
                       help="show the traceback of an error")
        p.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="no progress bars")
        return p

    parser = argparse.ArgumentParser(prog="msjax", description="Inspect, diff and convert checkpoints; export "
                                     "model-zoo networks. The file commands import no jax.",
                                     parents=[common(False)])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    flags = common(argparse.SUPPRESS)        # after the command too, without undoing one before it
    p = _command(sub, "inspect", "inspect", "list a checkpoint's names, shapes and dtypes in file order",
                 flags, "[options] FILE")
    p.add_argument("file", help=".ckpt, .safetensors, .pth/.pt/.bin or an orbax directory")
    p.add_argument("--json", action="store_true", help="print JSON: entries and totals")
    _add_dec(p)
    p = _command(sub, "diff", "diff", "compare two checkpoints entry by entry (exit 1 if they differ)",
                 flags, "[options] A B")
    p.add_argument("a")
    p.add_argument("b")
    _add_dec(p, what="both files")
    _add_dec(p, "a", "A only")
    _add_dec(p, "b", "B only")
    p = _command(sub, "convert", "convert", "convert a checkpoint; the format follows each path: "
                 ".ckpt, .safetensors, .pth/.pt/.bin (read only), a directory (orbax)", flags,
                 "[options] SRC DST")
    p.add_argument("src")
    p.add_argument("dst")
    _add_dec(p, what="src")
    p = _command(sub, "export", "export", "export a model-zoo network to MINDIR, AIR or ONNX", flags,
                 "[options] {lenet5,resnet50} FILE_NAME --input-shape N,C,H,W")
    p.add_argument("model", choices=MODELS)
    p.add_argument("file_name")
    p.add_argument("--ckpt", help="weights to load first (strict; .ckpt or .safetensors)")
    p.add_argument("--input-shape", required=True, help="e.g. 1,1,32,32")
    p.add_argument("--format", default="MINDIR", choices=EXPORT_FORMATS)
    _add_dec(p, what="--ckpt")
    return parser


def _one_line(err) -> str:
    text = " ".join(line.strip() for line in str(err).strip().splitlines() if line.strip())
    from msjax.errors import MsjaxError

    if isinstance(err, (MsjaxError, OSError, ValueError, TypeError)) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def main(argv=None):
    """Run one command; its exit status (0 ok, 1 diff found differences, 2 error)."""
    args = build_parser().parse_args(argv)
    try:
        from msjax import _cli_commands

        return getattr(_cli_commands, args.run)(args) or 0
    except BrokenPipeError:            # the reader (``| head``) left: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"msjax {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001  (the contract: one line, status 2; --debug shows the rest)
        if args.debug:
            traceback.print_exc()
        print(f"msjax {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
