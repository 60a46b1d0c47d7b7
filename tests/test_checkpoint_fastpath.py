"""The load fast paths hold exactly what the general ones do.

``host_parameters`` (Parameters built without flax's general constructor) against
``Parameter(...)``, case by case; ``positional.At`` (pread/preadv) against seek + read on every
kind of source the codec reads.
"""
from __future__ import annotations

import contextlib
import gzip
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import msjax
from msjax.checkpoint import ckpt_format
from msjax.checkpoint.positional import At
from msjax.common.parameter import Parameter, host_parameters

A = np.arange(6, dtype=np.float32).reshape(2, 3)
B = np.arange(4, dtype=np.int8)


def _same(fast, slow, value):
    """Everything a Parameter holds, compared: class, metadata (values and order), the array
    itself (no copy), and what the public API says."""
    assert type(fast) is type(slow)
    if type(slow) is not Parameter:
        return
    assert list(fast._var_metadata.items()) == list(slow._var_metadata.items())
    if type(value) is np.ndarray:
        assert fast._raw_value is slow._raw_value is value
    else:
        assert type(fast._raw_value) is type(slow._raw_value)
        assert np.array_equal(fast._raw_value, slow._raw_value) and fast._raw_value.dtype == slow._raw_value.dtype
    assert (fast.name, fast.requires_grad, fast.shape, fast.dtype, repr(fast)) == \
           (slow.name, slow.requires_grad, slow.shape, slow.dtype, repr(slow))
    assert fast._trace_state.is_valid() and fast._trace_state is not slow._trace_state


# each case: entries (name, value, metadata); host_parameters must build what Parameter(...) builds
CASES = {
    "one key set": [("a", A, {"ckpt_file": "f"}), ("b", A, {"ckpt_file": "f"}), ("c", B, {"ckpt_file": "f"})],
    "two key sets": [("a", A, {"ckpt_file": "f"}), ("b", B, {"ckpt_file": "f", "ms_dtype": "Int4"}),
                     ("c", A, {"ckpt_file": "f"}), ("d", B, {"ckpt_file": "f", "ms_dtype": "Int4"})],
    "no metadata": [("a", A, {}), ("b", A, {})],
    "jax value": [("a", A, {}), ("b", jnp.ones(3), {}), ("c", A, {})],
    "empty name": [("a", A, {}), ("", A, {}), (None, A, {})],
    "0-d and empty": [("a", np.ones((), np.float32), {}), ("b", np.zeros((0, 3), np.float16), {}),
                      ("c", np.float32(2.0), {}), ("d", np.ones((), np.float32), {})],
}


@pytest.mark.parametrize("case", CASES)
def test_host_parameters_match_init(case):
    entries = CASES[case]
    fast = host_parameters(entries)
    slow = [Parameter(v, name=n, **m) for n, v, m in entries]
    assert len(fast) == len(slow)
    for f, s, (_, value, _) in zip(fast, slow, entries):
        _same(f, s, value)


# nnx contexts under which __init__ does more than store: every entry must go through it
CONTEXTS = {
    "hijax": lambda: nnx.var_defaults(hijax=True),
    "ref": lambda: nnx.var_defaults(ref=True),
}


@pytest.mark.parametrize("context", CONTEXTS)
def test_host_parameters_under_nnx_contexts(context):
    entries = CASES["one key set"]
    with CONTEXTS[context]():
        fast = host_parameters(entries)
        slow = [Parameter(v, name=n, **m) for n, v, m in entries]
    assert [type(p) for p in fast] == [type(p) for p in slow]
    if context == "ref":
        assert all(type(f._raw_value) is type(s._raw_value) for f, s in zip(fast, slow))
        assert all(type(f._raw_value) is not np.ndarray for f in fast)


def test_host_parameters_behave_in_a_module():
    """A fast-built Parameter works wherever nnx takes one: split/merge, jit, updates, setters."""
    fast, = host_parameters([("w", A.copy(), {"ckpt_file": "f"}), ("v", A.copy(), {"ckpt_file": "f"})])[1:]
    slow = Parameter(A.copy(), name="v", ckpt_file="f")

    class M(nnx.Module):
        def __init__(self, p):
            self.p = p

    (g1, s1), (g2, s2) = nnx.split(M(fast)), nnx.split(M(slow))
    assert g1 == g2
    assert jax.tree.structure(s1) == jax.tree.structure(s2)
    m = nnx.merge(g1, s1)

    @nnx.jit
    def step(m):
        m.p.value = m.p.value * 2
        return m.p.value.sum()

    assert float(step(m)) == float(A.sum() * 2)
    fast.name, fast.requires_grad = "renamed", False
    assert (fast.name, fast.requires_grad) == ("renamed", False)
    fast.set_data(np.zeros(3, np.float32))
    assert fast.shape == (3,)
    msjax.ops.assign(slow, np.ones_like(A))
    assert np.array_equal(slow.asnumpy(), np.ones_like(A))


def test_loaded_parameters_match_init(tmp_path):
    """What load_checkpoint returns equals Parameters built one by one from the same file."""
    path = str(tmp_path / "n.ckpt")
    msjax.save_checkpoint({"a": A, "b": B, "c": A * 2}, path, append_dict={"note": "hi"})
    loaded = msjax.load_checkpoint(path)
    named, _ = ckpt_format.read(path)
    assert list(loaded) == list(named)
    assert loaded["note"] == "hi"
    for name in ("a", "b", "c"):
        slow = Parameter(named[name], name=name, ckpt_file=path)
        assert list(loaded[name]._var_metadata.items()) == list(slow._var_metadata.items())
        assert np.array_equal(loaded[name].asnumpy(), named[name])


# ------------------------------------------------------------------ positional reads

DATA = bytes(range(256)) * 40


def _sources(tmp_path):
    path = tmp_path / "d.bin"
    path.write_bytes(DATA)
    packed = tmp_path / "d.bin.gz"      # a wrapper whose fileno() is the compressed file's
    packed.write_bytes(gzip.compress(DATA))
    return {"file": lambda: open(path, "rb"), "unbuffered": lambda: open(path, "rb", buffering=0),
            "gzip": lambda: gzip.open(packed, "rb"),
            "bytesio": lambda: io.BytesIO(DATA), "memory": lambda: ckpt_format.Memory(DATA)}


# (pos, n): inside, at the start, across the end, past the end, empty
READS = [(0, 16), (100, 512), (len(DATA) - 10, 64), (len(DATA) + 5, 8), (7, 0), (0, len(DATA))]


@pytest.mark.parametrize("pos,n", READS)
def test_positional_reads_match_seek_and_read(tmp_path, pos, n):
    want = DATA[pos:pos + n]
    for kind, make in _sources(tmp_path).items():
        source = make()
        with source if kind != "memory" else contextlib.nullcontext(source) as f:
            at = At(f)
            assert (at.fd is not None) == (kind in ("file", "unbuffered")), kind
            assert at.read(pos, n) == want, kind
            buf = bytearray(n)
            got = at.readinto(memoryview(buf), pos)
            assert got == len(want) and bytes(buf[:got]) == want, kind
