"""Structure-aware protobuf mutation: parse, edit fields by their type, re-serialize.

``mutate(rng, message, tokens)`` edits a parsed message in place (dims to huge/negative/empty/
>64 entries, enum codes, strings to other names or to invalid UTF-8, bytes lengths, removed or
duplicated sub-messages, deep nesting) and returns a ``Mutated`` whose ``serialize()`` gives the
wire bytes (with invalid-UTF-8 markers patched in after serialization).
"""
from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor as FD

from .mut_bytes import INTERESTING

_RANGES = {
    FD.TYPE_INT32: (-2 ** 31, 2 ** 31 - 1), FD.TYPE_SINT32: (-2 ** 31, 2 ** 31 - 1),
    FD.TYPE_SFIXED32: (-2 ** 31, 2 ** 31 - 1), FD.TYPE_INT64: (-2 ** 63, 2 ** 63 - 1),
    FD.TYPE_SINT64: (-2 ** 63, 2 ** 63 - 1), FD.TYPE_SFIXED64: (-2 ** 63, 2 ** 63 - 1),
    FD.TYPE_UINT32: (0, 2 ** 32 - 1), FD.TYPE_FIXED32: (0, 2 ** 32 - 1),
    FD.TYPE_UINT64: (0, 2 ** 64 - 1), FD.TYPE_FIXED64: (0, 2 ** 64 - 1),
    FD.TYPE_ENUM: (-2 ** 31, 2 ** 31 - 1),
}
_FLOATS = [0.0, -0.0, 1.0, -1.0, float("nan"), float("inf"), float("-inf"), 1e38, 1e308, 5e-324]
_INVALID_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xe2\x82"]
#: strings worth trying anywhere (shared by every format; format tokens are added by callers)
COMMON_TOKENS = ["", ":", "::", "a" * 300, "\x00", "é", "x:y:z", "-1", "0", "None", "nan"]


class Mutated:
    """A mutated message plus the invalid-UTF-8 markers to patch into its wire bytes."""

    def __init__(self, message):
        self.message = message
        self.markers = []            # (marker str, replacement bytes of the same length)

    def marker(self, rng) -> str:
        text = f"~FZ{len(self.markers):03d}~"
        bad = rng.choice(_INVALID_UTF8)
        raw = (bad + b"q" * len(text))[:len(text)] if rng.random() < 0.5 else \
            (b"q" * len(text) + bad)[-len(text):]
        self.markers.append((text, raw))
        return text

    def serialize(self) -> bytes:
        data = self.message.SerializePartialToString(deterministic=True)
        for text, raw in self.markers:
            data = data.replace(text.encode(), raw)
        return data


_MAPS = {}


def _is_map(fd):
    found = _MAPS.get(fd)
    if found is None:
        found = _MAPS[fd] = fd.type == FD.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry
    return found


def _repeated(fd):
    return fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == FD.LABEL_REPEATED


def _children(msg):
    """Sub-messages of ``msg`` in a deterministic order (map keys sorted)."""
    for fd, value in msg.ListFields():
        if fd.type != FD.TYPE_MESSAGE:
            continue
        if _is_map(fd):
            if fd.message_type.fields_by_name["value"].type == FD.TYPE_MESSAGE:
                for key in sorted(value):
                    yield value[key]
        elif _repeated(fd):
            yield from value
        else:
            yield value


def messages(msg) -> list:
    """``msg`` and every message below it, depth first."""
    out, stack = [], [msg]
    while stack:
        m = stack.pop()
        out.append(m)
        stack.extend(reversed(list(_children(m))))
    return out


def strings(tree) -> list:
    """Every string value in ``tree`` (names, op types, inputs): the crossover pool."""
    pool = []
    for m in tree:
        for fd, value in m.ListFields():
            if fd.type == FD.TYPE_STRING and not _is_map(fd):
                pool.extend(value if _repeated(fd) else [value])
    return pool


def _int(rng, fd):
    lo, hi = _RANGES.get(fd.type, (-2 ** 63, 2 ** 63 - 1))
    if fd.type == FD.TYPE_ENUM and rng.random() < 0.6:
        return rng.choice(fd.enum_type.values).number
    value = rng.choice(INTERESTING + [rng.randrange(-300, 300)])
    return min(max(value, lo), hi)


def _scalar(rng, fd, m: Mutated, pool, tokens):
    """A new value for one scalar of field ``fd``."""
    t = fd.type
    if t == FD.TYPE_BOOL:
        return rng.random() < 0.5
    if t in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return rng.choice(_FLOATS)
    if t == FD.TYPE_STRING:
        r = rng.random()
        if r < 0.25:
            return m.marker(rng)
        if r < 0.55 and pool:
            return rng.choice(pool)
        if r < 0.85:
            return rng.choice(tokens + COMMON_TOKENS)
        return rng.choice(pool or [""]) + rng.choice(["", "x", ":0", "\u2603"])
    if t == FD.TYPE_BYTES:
        return rng.choice([b"", b"\x00", rng.randbytes(rng.choice([1, 3, 5, 7, 64])),
                           rng.choice(_INVALID_UTF8), b"\xff" * 4096])
    return _int(rng, fd)


def _mutate_bytes_value(rng, value: bytes):
    r = rng.random()
    if r < 0.3 and value:
        return value[:rng.randrange(len(value))], "truncated"
    if r < 0.5:
        return value + rng.randbytes(rng.choice([1, 2, 3, 4, 8, 13])), "extended"
    if r < 0.6:
        return value * 2, "doubled"
    if r < 0.7:
        return b"", "emptied"
    if r < 0.8:
        return rng.choice(_INVALID_UTF8) + value, "invalid utf-8 prefix"
    if r < 0.9 and value:
        i = rng.randrange(len(value))
        return value[:i] + bytes([value[i] ^ 0xFF]) + value[i + 1:], "byte flipped"
    return value[:1] * 100_000, "100k bytes"


def _repeated_ints(rng, fd, container):
    """dims-like edits: empty, huge, negative, >64 entries, overflowing products."""
    lo, hi = _RANGES.get(fd.type, (-2 ** 63, 2 ** 63 - 1))
    values = list(container)
    choice = rng.randrange(9)
    if choice == 0:
        new, note = [], "emptied"
    elif choice == 1:
        new, note = values + [1] * rng.choice([1, 60, 64, 65, 70, 200]), "padded with ones"
    elif choice == 2:
        new, note = [rng.choice([2 ** 31, 2 ** 32, 2 ** 40, 2 ** 62])] * rng.choice([1, 2, 3]), "huge"
    elif choice == 3 and values:
        i = rng.randrange(len(values))
        new = values[:i] + [rng.choice([-1, -2, -2 ** 31, -2 ** 63, 0])] + values[i + 1:]
        note = f"entry {i} negative/zero"
    elif choice == 4 and values:
        i = rng.randrange(len(values))
        new = values[:i] + [_int(rng, fd)] + values[i + 1:]
        note = f"entry {i} interesting"
    elif choice == 5:
        new, note = [rng.randrange(0, 5) for _ in range(rng.choice([65, 100, 1000]))], "many entries"
    elif choice == 6 and values:
        new, note = values[::-1] + values[:1], "reversed + dup"
    elif choice == 7:
        new, note = values + [0], "trailing zero"
    else:
        new, note = [2 ** 62, 4] if hi >= 2 ** 62 else [2 ** 16, 2 ** 16], "product overflows"
    new = [min(max(v, lo), hi) for v in new]
    if fd.type == FD.TYPE_ENUM:
        new = [v % 2 ** 31 for v in new]
    del container[:]
    container.extend(new)
    return note


def _nest(rng, msg, fd):
    """Grow a chain of self-nested messages (AttributeProto.values inside values ...)."""
    depth = rng.choice([2, 20, 50, 99, 120, 1000])
    node = msg
    for _ in range(depth):
        node = getattr(node, fd.name).add()
    return f"nested {depth} deep"


def _copy(donor):
    """A detached copy (upb crashes when a message is copied into its own subtree)."""
    copy = type(donor)()
    copy.CopyFrom(donor)
    return copy


def _field(rng, msg, fd, m: Mutated, pool, tokens, tree):
    """Mutate field ``fd`` of ``msg``; return a note, or None when nothing applied."""
    name = fd.name
    if _is_map(fd):
        mp = getattr(msg, name)
        keys = sorted(mp)
        value_fd = fd.message_type.fields_by_name["value"]
        r = rng.random()
        if keys and r < 0.35:
            del mp[rng.choice(keys)]
            return f"{name}: deleted a key"
        key = m.marker(rng) if r < 0.55 else rng.choice(tokens + COMMON_TOKENS + keys)
        if value_fd.type == FD.TYPE_MESSAGE:
            donor = _copy(mp[rng.choice(keys)]) if keys else None
            entry = mp[key]
            if donor is not None:
                entry.CopyFrom(donor)
        else:
            mp[key] = _scalar(rng, value_fd, m, pool, tokens)
        return f"{name}: set key {key!r}"
    if fd.type == FD.TYPE_MESSAGE:
        same = [t for t in tree if t.DESCRIPTOR is fd.message_type]
        if _repeated(fd):
            box = getattr(msg, name)
            n = len(box)
            r = rng.random()
            if fd.message_type is msg.DESCRIPTOR and r < 0.15:
                return f"{name}: " + _nest(rng, msg, fd)
            if n and r < 0.4:
                del box[rng.randrange(n)]
                return f"{name}: deleted an entry"
            if n and r < 0.65:
                donor = _copy(box[rng.randrange(n)])
                box.add().CopyFrom(donor)
                return f"{name}: duplicated an entry"
            if n > 1 and r < 0.8:
                items = [_copy(x) for x in box]
                rng.shuffle(items)
                del box[:]
                box.extend(items)
                return f"{name}: shuffled"
            if r < 0.9:
                del box[:]
                return f"{name}: cleared"
            donor = _copy(rng.choice(same)) if same and rng.random() < 0.7 else None
            entry = box.add()
            if donor is not None:
                entry.CopyFrom(donor)
            return f"{name}: added an entry"
        r = rng.random()
        if r < 0.5 and msg.HasField(name):
            msg.ClearField(name)
            return f"{name}: removed"
        if r < 0.8 and same:
            getattr(msg, name).CopyFrom(_copy(rng.choice(same)))
            return f"{name}: replaced by another {fd.message_type.name}"
        getattr(msg, name).SetInParent()
        getattr(msg, name).Clear()
        return f"{name}: set empty"
    if _repeated(fd):
        box = getattr(msg, name)
        if fd.type not in (FD.TYPE_STRING, FD.TYPE_BYTES, FD.TYPE_BOOL, FD.TYPE_FLOAT,
                           FD.TYPE_DOUBLE) and rng.random() < 0.7:
            return f"{name}: " + _repeated_ints(rng, fd, box)
        n = len(box)
        r = rng.random()
        if n and r < 0.3:
            i = rng.randrange(n)
            if fd.type == FD.TYPE_BYTES and rng.random() < 0.5:
                box[i], note = _mutate_bytes_value(rng, box[i])
                return f"{name}[{i}]: {note}"
            box[i] = _scalar(rng, fd, m, pool, tokens)
            return f"{name}[{i}]: replaced"
        if n and r < 0.5:
            del box[rng.randrange(n)]
            return f"{name}: deleted an entry"
        if r < 0.6:
            del box[:]
            return f"{name}: cleared"
        if n and r < 0.75:
            box.append(box[rng.randrange(n)])
            return f"{name}: duplicated an entry"
        box.append(_scalar(rng, fd, m, pool, tokens))
        return f"{name}: appended"
    if fd.type == FD.TYPE_BYTES and rng.random() < 0.7:
        value, note = _mutate_bytes_value(rng, getattr(msg, name))
        setattr(msg, name, value)
        return f"{name}: {note}"
    if rng.random() < 0.15 and msg.HasField(name):
        msg.ClearField(name)
        return f"{name}: removed"
    setattr(msg, name, _scalar(rng, fd, m, pool, tokens))
    return f"{name}: set"


def mutate(rng, message, tokens=(), rounds=None) -> tuple[Mutated, str]:
    """Apply 1-3 field mutations to ``message`` (in place); return (Mutated, note)."""
    m = Mutated(message)
    tokens = list(tokens)
    tree = messages(message)
    pool = strings(tree)
    notes = []
    for round_ in range(rounds or rng.choice([1, 1, 1, 2, 3])):
        if round_:
            tree = messages(message)         # the last edit may have moved or dropped messages
        for _attempt in range(20):
            target = rng.choice(tree)
            set_fields = [fd for fd, _ in target.ListFields()]
            fields = set_fields if set_fields and rng.random() < 0.85 else list(target.DESCRIPTOR.fields)
            if not fields:
                continue
            fd = rng.choice(fields)
            try:
                note = _field(rng, target, fd, m, pool, tokens, tree)
            except (ValueError, TypeError, OverflowError):   # a value the field refuses: retry
                continue
            if note:
                notes.append(f"{target.DESCRIPTOR.name}.{note}")
                break
    return m, "proto: " + "; ".join(notes)
