"""Deterministic seed files, one per reader, written by msjax itself (and a torch-free .pth).

``build(directory)`` writes every seed; ``SEEDS`` maps a reader to its seed file name.
The .pth seed is a torch.save zip produced by ``pth_bytes`` from a plain description
(``PthDoc``), which the structure-aware mutator edits and re-serializes.
"""
from __future__ import annotations

import dataclasses
import io
import os
import struct
import zipfile
from unittest import mock

import numpy as np

#: one fixed key per encrypted reader: (dec_key, dec_mode)
KEYS = {
    "ckpt_aes_gcm": (bytes(range(32)), "AES-GCM"),
    "ckpt_aes_cbc": (bytes(range(16, 32)), "AES-CBC"),
    "ckpt_sm4_cbc": (bytes(range(100, 116)), "SM4-CBC"),
    "mindir_enc": (bytes(range(200, 224)), "AES-CBC"),
}

#: reader -> seed file name (the suffix is what the reader insists on)
SEEDS = {
    "ckpt": "seed.ckpt", "ckpt_crc": "seed_crc.ckpt",
    "ckpt_aes_gcm": "seed_gcm.ckpt", "ckpt_aes_cbc": "seed_cbc.ckpt", "ckpt_sm4_cbc": "seed_sm4.ckpt",
    "safetensors": "seed.safetensors", "mindir": "seed.mindir", "mindir_enc": "seed_enc.mindir",
    "air": "seed.air",
    "graph_meta": "seed-graph.meta", "pth": "seed.pth",
}


def fixed_urandom(seed: bytes):
    """A deterministic stand-in for ``os.urandom`` (for reproducible IVs)."""
    import random
    rng = random.Random(seed)
    return lambda n: bytes(rng.getrandbits(8) for _ in range(n))


def encrypt(plain: bytes, key: bytes, mode: str, seed: bytes = b"iv") -> bytes:
    """msjax's encryption with IVs drawn from ``seed`` instead of the OS."""
    from msjax.checkpoint import crypto
    with mock.patch.object(crypto.os, "urandom", fixed_urandom(seed)):
        return crypto.encrypt(plain, key, mode)


def param_dict():
    """A few parameters of several dtypes (name -> numpy array)."""
    import ml_dtypes
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
        "fc.bias": rng.standard_normal(3).astype(np.float16),
        "emb.table": rng.standard_normal((2, 2)).astype(ml_dtypes.bfloat16),
        "step.count": np.array([7, -3], np.int32),
        "global_step": np.array(12, np.int64),
        "mask": np.array([True, False, True]),
        "codes": np.arange(4, dtype=np.uint8),
        "moments.w": rng.standard_normal((2, 3)).astype(np.float64),
        "quant.w": np.array([1, -2, 7, -8], np.int8),              # saved as Int4 (qint4x2)
        "fp8.scale": np.array([1.5, -2.0], ml_dtypes.float8_e4m3fn),
        "rotary": np.array([1 + 2j, -0.5j], np.complex64),
    }


#: seed parameters stored with a MindSpore dtype numpy cannot tell
MS_DTYPES = {"quant.w": "Int4"}


def ckpt_items():
    """The save_obj list for .ckpt and safetensors seeds."""
    from msjax.common.tensor import Parameter
    return [Parameter(v, name=k, **({"ms_dtype": MS_DTYPES[k]} if k in MS_DTYPES else {}))
            for k, v in param_dict().items()]


def plain_ckpt(directory) -> bytes:
    """The unencrypted .ckpt bytes the encrypted seeds hold."""
    with open(os.path.join(directory, SEEDS["ckpt"]), "rb") as f:
        return f.read()


class Tiny:
    """A tiny conv/batch-norm/pool/dense network (built lazily: it imports msjax.nn)."""

    @staticmethod
    def make():
        import msjax
        from msjax import nn

        class TinyNet(nn.Cell):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(1, 2, 3, pad_mode="same", has_bias=True)
                self.bn = nn.BatchNorm2d(2)
                self.relu = nn.ReLU()
                self.pool = nn.MaxPool2d(2, 2)
                self.flatten = nn.Flatten()
                self.fc = nn.Dense(2 * 2 * 2, 3)

            def construct(self, x):
                return self.fc(self.flatten(self.pool(self.relu(self.bn(self.conv(x))))))

        msjax.set_seed(0)
        return TinyNet()


def _write_ckpts(directory):
    import msjax
    items = ckpt_items()
    extra = {"epoch_num": 3, "note": "tiny seed", "lr": 0.5}
    msjax.save_checkpoint(items, os.path.join(directory, SEEDS["ckpt"]), append_dict=extra)
    msjax.save_checkpoint(items, os.path.join(directory, SEEDS["ckpt_crc"]), append_dict=extra,
                          crc_check=True)
    plain = plain_ckpt(directory)
    for reader, (key, mode) in KEYS.items():
        if not reader.startswith("ckpt"):
            continue
        with open(os.path.join(directory, SEEDS[reader]), "wb") as f:
            f.write(encrypt(plain, key, mode, reader.encode()))
    msjax.save_checkpoint(items, os.path.join(directory, SEEDS["safetensors"]),
                          append_dict={"epoch_num": 3}, format="safetensors")


def _example():
    from msjax.common.tensor import Tensor
    return Tensor(np.zeros((1, 1, 4, 4), np.float32))


def _write_mindir(directory):
    """seed.mindir, and the same ModelProto encrypted as ``export(enc_key=, enc_mode=)`` does."""
    import msjax
    msjax.export(Tiny.make(), _example(), file_name=os.path.join(directory, "seed"), file_format="MINDIR")
    with open(os.path.join(directory, SEEDS["mindir"]), "rb") as f:
        plain = f.read()
    key, mode = KEYS["mindir_enc"]
    with open(os.path.join(directory, SEEDS["mindir_enc"]), "wb") as f:
        f.write(encrypt(plain, key, mode, b"mindir_enc"))


def _write_air(directory):
    import msjax
    msjax.export(Tiny.make(), _example(), file_name=os.path.join(directory, "seed"), file_format="AIR")


def _write_graph_meta(directory):
    from msjax_exporters.graph_meta import write_graph_meta
    from msjax import nn
    from msjax.common.tensor import Tensor

    net = Tiny.make()
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()),
                               nn.Momentum(net.trainable_params(), 0.1, 0.9))
    y = Tensor(np.zeros((1, 3), np.float32))
    write_graph_meta(step, (_example(), y), os.path.join(directory, SEEDS["graph_meta"]))


# --------------------------------------------------------------------------- .pth without torch

@dataclasses.dataclass
class PthTensor:
    """One state-dict entry: ``_rebuild_tensor_v2(storage(key), offset, size, stride, ...)``."""
    name: object
    storage: str                 # torch storage class name ("FloatStorage")
    key: object                  # storage key (the file under data/)
    numel: object
    offset: object
    size: object
    stride: object
    location: object = "cpu"
    requires_grad: object = False
    parameter: bool = False      # wrap in _rebuild_parameter
    pid: object = None           # replaces the persistent id tuple
    func: object = None          # replaces the _rebuild_tensor_v2 global
    extra: tuple = ()            # more arguments after backward_hooks


@dataclasses.dataclass
class PthDoc:
    """A torch.save file: root folder, tensors, storages (key -> bytes), extra zip entries."""
    root: str
    tensors: list
    storages: dict
    byteorder: bytes = b"little"
    version: bytes = b"3\n"
    wrap: str | None = None      # nest the dict under this key ({"state_dict": {...}})
    compression: int = zipfile.ZIP_STORED
    obj: object = None           # replaces the whole pickled object
    extra: list = dataclasses.field(default_factory=list)   # more (name, bytes) zip entries


_PTH_DTYPES = {"FloatStorage": np.float32, "HalfStorage": np.float16, "LongStorage": np.int64,
               "IntStorage": np.int32, "BoolStorage": np.bool_, "DoubleStorage": np.float64,
               "ByteStorage": np.uint8}


def pth_doc() -> PthDoc:
    """The .pth seed's description: a conv/bn state dict, one tensor a strided view."""
    rng = np.random.default_rng(1)
    arrays = {
        "conv.weight": ("FloatStorage", rng.standard_normal((2, 1, 3, 3)).astype(np.float32)),
        "bn.running_mean": ("FloatStorage", rng.standard_normal(2).astype(np.float32)),
        "bn.num_batches_tracked": ("LongStorage", np.array(5, np.int64)),
        "fc.weight": ("HalfStorage", rng.standard_normal((3, 4)).astype(np.float16)),
        "ids": ("IntStorage", np.arange(6, dtype=np.int32)),
        "mask": ("BoolStorage", np.array([True, False])),
    }
    tensors, storages = [], {}
    for i, (name, (storage, a)) in enumerate(arrays.items()):
        key = str(i)
        storages[key] = a.tobytes()
        stride = tuple(int(s // a.itemsize) for s in a.strides)
        tensors.append(PthTensor(name, storage, key, a.size, 0, tuple(a.shape), stride,
                                 parameter=name.endswith("weight")))
    # a view: the transposed first 2x2 block of "ids" (offset 1, strides (1, 3))
    tensors.append(PthTensor("ids_view", "IntStorage", "4", 6, 1, (2, 2), (1, 3)))
    return PthDoc("archive", tensors, storages)


class Pickle:
    """A hand-written protocol-2 pickle emitter for torch.save's data.pkl (no torch needed).

    Values: int, float, bool, None, str, bytes, tuple, list, dict, and the nodes ``Global``,
    ``Call`` (REDUCE) and ``Pid`` (a persistent id), so mutated pickles stay well-formed.
    """

    def __init__(self):
        self.out = bytearray(b"\x80\x02")
        self.memo = 0

    def dumps(self, obj) -> bytes:
        self.save(obj)
        self.out += b"."
        return bytes(self.out)

    def put(self):
        if self.memo < 256:
            self.out += b"q" + bytes([self.memo])
        else:
            self.out += b"r" + struct.pack("<I", self.memo)
        self.memo += 1

    def save(self, obj):
        o = self.out
        if isinstance(obj, Global):
            o += b"c" + obj.module.encode() + b"\n" + obj.name.encode() + b"\n"
            self.put()
        elif isinstance(obj, Call):
            self.save(obj.func)
            self.save(tuple(obj.args))
            o += b"R"
            self.put()
        elif isinstance(obj, Pid):
            self.save(obj.value)
            o += b"Q"
        elif obj is None:
            o += b"N"
        elif obj is True or obj is False:
            o += b"\x88" if obj else b"\x89"
        elif isinstance(obj, int):
            self._int(obj)
        elif isinstance(obj, float):
            o += b"G" + struct.pack(">d", obj)
        elif isinstance(obj, str):
            raw = obj.encode("utf-8", "surrogatepass")
            o += b"X" + struct.pack("<I", len(raw)) + raw
            self.put()
        elif isinstance(obj, RawStr):   # BINUNICODE with arbitrary (possibly invalid) bytes
            o += b"X" + struct.pack("<I", len(obj.raw)) + obj.raw
        elif isinstance(obj, bytes):    # protocol 2 has no bytes opcode: _codecs.encode, as CPython
            self.save(Call(Global("_codecs", "encode"), (obj.decode("latin-1"), "latin1")))
        elif isinstance(obj, tuple):
            if not obj:
                o += b")"
            elif len(obj) <= 3:
                for item in obj:
                    self.save(item)
                o += {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(obj)]
            else:
                o += b"("
                for item in obj:
                    self.save(item)
                o += b"t"
            self.put()
        elif isinstance(obj, list):
            o += b"]"
            self.put()
            if obj:
                o += b"("
                for item in obj:
                    self.save(item)
                o += b"e"
        elif isinstance(obj, (dict, ODict)):
            items = obj.items if isinstance(obj, ODict) else list(obj.items())
            if isinstance(obj, ODict):
                self.save(Global("collections", "OrderedDict"))
                o += b")R"
            else:
                o += b"}"
            self.put()
            if items:
                o += b"("
                for k, v in items:
                    self.save(k)
                    self.save(v)
                o += b"u"
        else:
            raise TypeError(f"cannot pickle {type(obj).__name__}")

    def _int(self, n):
        o = self.out
        if 0 <= n < 256:
            o += b"K" + bytes([n])
        elif 0 <= n < 65536:
            o += b"M" + struct.pack("<H", n)
        elif -2 ** 31 <= n < 2 ** 31:
            o += b"J" + struct.pack("<i", n)
        else:
            raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
            if len(raw) < 256:
                o += b"\x8a" + bytes([len(raw)]) + raw
            else:
                o += b"\x8b" + struct.pack("<i", len(raw)) + raw


@dataclasses.dataclass(frozen=True)
class Global:
    module: str
    name: str


@dataclasses.dataclass(frozen=True)
class Call:
    func: object
    args: tuple


@dataclasses.dataclass(frozen=True)
class Pid:
    value: object


@dataclasses.dataclass(frozen=True)
class RawStr:
    raw: bytes


@dataclasses.dataclass
class ODict:
    """An ``collections.OrderedDict`` with the given (key, value) items (keys may repeat)."""
    items: list


def pth_object(doc: PthDoc):
    """The object data.pkl holds, as emitter nodes."""
    if doc.obj is not None:
        return doc.obj
    entries = []
    for t in doc.tensors:
        pid = Pid(("storage", Global("torch", t.storage), t.key, t.location, t.numel)
                  if t.pid is None else t.pid)
        tensor = Call(t.func or Global("torch._utils", "_rebuild_tensor_v2"),
                      (pid, t.offset, t.size, t.stride, t.requires_grad, ODict([]), *t.extra))
        if t.parameter:
            tensor = Call(Global("torch._utils", "_rebuild_parameter"), (tensor, t.requires_grad, ODict([])))
        entries.append((t.name, tensor))
    state = ODict(entries)
    return {doc.wrap: state, "epoch": 3} if doc.wrap else state


def pth_bytes(doc: PthDoc, pickle_bytes: bytes | None = None) -> bytes:
    """torch.save's zip layout for ``doc`` (``pickle_bytes`` replaces the generated data.pkl)."""
    data = Pickle().dumps(pth_object(doc)) if pickle_bytes is None else pickle_bytes
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=doc.compression) as z:
        entries = [(f"{doc.root}/data.pkl", data), (f"{doc.root}/.format_version", b"1"),
                   (f"{doc.root}/.storage_alignment", b"64"), (f"{doc.root}/byteorder", doc.byteorder)]
        entries += [(f"{doc.root}/data/{k}", v) for k, v in doc.storages.items()]
        entries += [(f"{doc.root}/version", doc.version)] + list(doc.extra)
        for name, payload in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = doc.compression
            z.writestr(info, payload)
    return buf.getvalue()


def _write_pth(directory):
    with open(os.path.join(directory, SEEDS["pth"]), "wb") as f:
        f.write(pth_bytes(pth_doc()))


_WRITERS = [
    (("ckpt", "ckpt_crc", "ckpt_aes_gcm", "ckpt_aes_cbc", "ckpt_sm4_cbc", "safetensors"), _write_ckpts),
    (("mindir", "mindir_enc"), _write_mindir), (("air",), _write_air), (("graph_meta",), _write_graph_meta),
    (("pth",), _write_pth),
]


def build(directory) -> tuple[dict, dict]:
    """Write every reader's seed into ``directory``.

    Returns (reader -> path, reader -> error): a writer that fails costs only its own readers.
    """
    os.makedirs(directory, exist_ok=True)
    paths, errors = {}, {}
    for readers, write in _WRITERS:
        try:
            write(directory)
        except Exception as exc:            # noqa: BLE001 - reported per reader by the runner
            errors.update({r: f"msjax could not write the seed: {type(exc).__name__}: {exc}"
                           for r in readers})
            continue
        paths.update({r: os.path.join(directory, SEEDS[r]) for r in readers})
    return paths, errors


if __name__ == "__main__":
    import sys
    built, failed = build(sys.argv[1] if len(sys.argv) > 1 else "fuzz-seeds")
    for reader, path in built.items():
        print(f"{reader:14s} {os.path.getsize(path):7d} {path}")
    for reader, error in failed.items():
        print(f"{reader:14s} FAILED  {error}")
