"""One fuzz case: ``make(reader, case, seeds)`` -> ``Case`` (file bytes, a note, expectations).

Deterministic by (reader, case): every choice comes from ``random.Random(f"{reader}:{case}")``.
Case 0 is the unmutated seed. About a third of the cases are byte-level, the rest
structure-aware (protobuf fields, .ckpt records and CRC, encrypted blocks, safetensors JSON,
the .pth pickle and zip).
"""
from __future__ import annotations

import dataclasses
import random

from . import mut_bytes, mut_ckpt, mut_proto, mut_pth, mut_safetensors
from .seeds import KEYS, encrypt

#: tokens that structure mutators try in string fields, per protobuf format
_TOKENS = {
    "mindir": ["REF::Conv2D:1", "REF::Nope", "REF::", "Constant", "REF::MatMul:12", "value",
               "TinyNet:x", "TinyNet:conv.weight", "shape", "pad_mode", "same", "input_names"],
    "air": ["Const", "Data", "NetOutput", "Conv2D", "Reshape", "Cast", "Nope", "value", "index",
            "x:0", "x:-1", "strides", "pads", "dst_type", "_input_name"],
    "graph_meta": ["inputs0", "cst1", "1", "Conv2D", "MatMul", "conv.weight", "Default"],
}


@dataclasses.dataclass
class Case:
    data: bytes
    note: str
    invalid: list = dataclasses.field(default_factory=list)   # names a correct reader refuses


def _proto_type(reader):
    from msjax._proto import anf_ir_pb2, ge_ir_pb2, mind_ir_pb2
    return {"mindir": mind_ir_pb2.ModelProto, "air": ge_ir_pb2.ModelDef,
            "graph_meta": anf_ir_pb2.ModelProto}[reader]


#: parameter names that collide with what a Cell holds (GraphCell sets one attribute per name)
_CELL_NAMES = ["__class__", "__dict__", "_graph", "construct", "training", "parameters_dict",
               "", ".", "a..b", "1x", "x y", "conv", "conv.weight.more", "__init__", "_cell_order",
               "__setattr__", "fc.weight", "TinyNet:fc.weight"]


def _rename_parameters(rng, model) -> str:
    """MINDIR: give graph parameters hostile or clashing ref_keys."""
    params = list(model.graph.parameter)
    notes = []
    for t in rng.sample(params, rng.choice([1, 1, 2])) if params else []:
        t.ref_key = rng.choice(_CELL_NAMES)
        if rng.random() < 0.3:
            t.name = f"TinyNet:{t.ref_key}"
        notes.append(repr(t.ref_key))
    return "mindir: ref_key " + ", ".join(notes)


def _proto(rng, reader, seed):
    message = _proto_type(reader).FromString(seed)
    if reader == "mindir" and rng.random() < 0.12:
        note = _rename_parameters(rng, message)
        return message.SerializeToString(), note
    m, note = mut_proto.mutate(rng, message, _TOKENS[reader])
    return m.serialize(), note


def _encrypted(rng, reader, case, plain, structure):
    """An encrypted file: ``plain`` mutated by ``structure(rng, plain)`` or bytes (or not), cut
    into 1-3 blocks, encrypted with IVs from (reader, case), then framing or ciphertext edits."""
    key, mode = KEYS[reader]
    r = rng.random()
    changed = r < 0.55
    if r < 0.45:
        plain, note = structure(rng, plain)
    elif r < 0.55:
        plain, note = mut_bytes.mutate(rng, plain)
        note = "plaintext " + note
    else:
        note = "seed plaintext"
    cuts = sorted(rng.sample(range(1, len(plain)), rng.choice([0, 0, 1, 2]))) if len(plain) > 3 else []
    pieces = [plain[a:b] for a, b in zip([0] + cuts, cuts + [len(plain)])]
    iv_seed = f"{reader}:{case}".encode()
    blocks = [b for p in pieces if p for b in mut_ckpt.unframe(encrypt(p, key, mode, iv_seed),
                                                                mode == "AES-GCM")]
    if len(pieces) > 1:
        note += f"; {len(pieces)} blocks"
    r = rng.random()
    if blocks and r < 0.3:
        note += "; " + mut_ckpt.mutate_frames(rng, blocks, mode)
        changed = True
    elif blocks and mode != "AES-GCM" and r < 0.38:
        changed = True
        i = rng.randrange(len(blocks))
        pad = rng.choice([b"", b"\x00", b"\x11" * 17, b"\x02\x03", b"\x10" * 15 + b"\x11", bytes(16)])
        blocks[i] = mut_ckpt.cbc_block(key, mode, pieces[i] if i < len(pieces) else b"", bytes(16), pad)
        note += f"; block {i} padding {pad[-2:]!r}"
    data = mut_ckpt.frame(blocks)
    if r >= 0.38 and (r < 0.7 or not changed):
        data, byte_note = mut_bytes.mutate(rng, data)
        note += "; ciphertext " + byte_note
    return Case(data, f"{mode}: {note}")


def make(reader: str, case: int, seeds: dict) -> Case:
    """Case ``case`` of ``reader``; ``seeds`` maps reader -> seed bytes."""
    from .targets import base
    reader = base(reader)                    # mindir_run's case N is mindir's case N
    seed = seeds[reader]
    if case == 0:
        return Case(seed, "seed")
    rng = random.Random(f"{reader}:{case}")
    if reader == "mindir_enc":
        return _encrypted(rng, reader, case, seeds["mindir"], lambda g, p: _proto(g, "mindir", p))
    if reader in KEYS:
        return _encrypted(rng, reader, case, seeds["ckpt"],
                          lambda g, p: mut_ckpt.mutate_plain(g, p, crc=False))
    if rng.random() < 0.3:
        data, note = mut_bytes.mutate(rng, seed)
        if reader == "ckpt_crc" and rng.random() < 0.6:        # let the parser see the damage
            data = mut_ckpt.split_crc(data)[0]
            data += mut_ckpt.crc_trailer(data)
            note += "; CRC recomputed"
        return Case(data, note)
    if reader in ("ckpt", "ckpt_crc"):
        data, note = mut_ckpt.mutate_plain(rng, seed, crc=reader == "ckpt_crc")
    elif reader == "safetensors":
        data, note = mut_safetensors.mutate(rng, seed)
    elif reader == "pth":
        data, note, invalid = mut_pth.mutate(rng)
        return Case(data, note, invalid)
    else:
        data, note = _proto(rng, reader, seed)
    if rng.random() < 0.1:
        data, byte_note = mut_bytes.mutate(rng, data, rounds=1)
        note += "; then " + byte_note
    return Case(data, note)
