"""The MINDIR, AIR and graph.meta readers trust no file.

Seeds are exported here from a tiny msjax network; each crafted case mutates the parsed
ModelProto/ModelDef (or the bytes, where protobuf's API cannot express the defect) and asserts an
``ExportError`` that names the file and the cause. A deterministic random loop then mutates bytes
and fields and asserts that nothing but ``ExportError`` escapes a reader.
"""
import random
import tracemalloc

import numpy as np
import pytest
from google.protobuf.descriptor import FieldDescriptor as FD

import msjax
from msjax_exporters import from_air
from msjax_exporters.graph_meta import read_graph_meta, write_graph_meta
from msjax import nn
from msjax._proto import anf_ir_pb2, ge_ir_pb2, mind_ir_pb2
from msjax.common.tensor import Tensor
from msjax.errors import ExportError, UnsupportedOpError

A = mind_ir_pb2.AttributeProto
X = np.ones((2, 4), np.float32)


class Tiny(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(4, 3)
        self.relu = nn.ReLU()

    def construct(self, x):
        return self.relu(self.fc(x)).reshape((3, 2))


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """name -> bytes of the freshly exported seed files ("mindir", "air", "meta")."""
    from msjax.nn.loss import SoftmaxCrossEntropyWithLogits
    from msjax.nn.optim import Momentum
    from msjax.nn.wrap import TrainOneStepCell, WithLossCell

    folder = tmp_path_factory.mktemp("seeds")
    msjax.export(Tiny(), Tensor(X), file_name=str(folder / "tiny"), file_format="MINDIR")
    msjax.export(Tiny(), Tensor(X), file_name=str(folder / "tiny"), file_format="AIR")
    net = nn.Dense(4, 3)
    step = TrainOneStepCell(WithLossCell(net, SoftmaxCrossEntropyWithLogits(sparse=True)),
                            Momentum(net.trainable_params(), 0.01, 0.9))
    write_graph_meta(step, (Tensor(X), Tensor(np.zeros(2, np.int32))), folder / "tiny-graph.meta")
    return {"mindir": (folder / "tiny.mindir").read_bytes(), "air": (folder / "tiny.air").read_bytes(),
            "meta": (folder / "tiny-graph.meta").read_bytes()}


# ------------------------------------------------------------------ helpers
MESSAGES = {"mindir": mind_ir_pb2.ModelProto, "air": ge_ir_pb2.ModelDef, "meta": anf_ir_pb2.ModelProto}
SUFFIX = {"mindir": ".mindir", "air": ".air", "meta": "-graph.meta"}


def read(kind, path):
    """The public entry point a user calls for ``kind``."""
    if kind == "mindir":
        return msjax.nn.GraphCell(msjax.load(path))
    if kind == "air":
        return from_air.load(path)
    return read_graph_meta(path)


def write(tmp_path, kind, name, data: bytes) -> str:
    path = str(tmp_path / (name + SUFFIX[kind]))
    with open(path, "wb") as f:
        f.write(data)
    return path


def edited(seed: bytes, kind, edit) -> bytes:
    model = MESSAGES[kind].FromString(seed)
    edit(model)
    return model.SerializePartialToString()


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def nested(fields, leaf=b"") -> bytes:
    """Length-delimited fields ``fields[0] { fields[1] { ... leaf } }`` in wire format."""
    for number in reversed(fields):
        leaf = varint(number << 3 | 2) + varint(len(leaf)) + leaf
    return leaf


class OnBytes:
    """An edit of the serialized file, for defects protobuf's API cannot express."""

    def __init__(self, fn):
        self.fn = fn


def swap_bytes(old: bytes, new: bytes, data: bytes) -> bytes:
    """Replace the first ``old`` (a string's bytes) with ``new`` of the same length."""
    assert len(old) == len(new) and old in data, old
    return data.replace(old, new, 1)


def invalid_utf8(old: bytes, new: bytes) -> OnBytes:
    return OnBytes(lambda data: swap_bytes(old, new, data))


def apply(seed: bytes, kind, edit) -> bytes:
    return edit.fn(seed) if isinstance(edit, OnBytes) else edited(seed, kind, edit)


def node(model, op):
    return next(n for n in model.graph.node if n.op_type.startswith(f"REF::{op}"))


def constant(model, kind):
    return next(n for n in model.graph.node if n.op_type == "Constant" and n.attribute[0].type == kind)


def air_op(model, op_type):
    return next(op for op in model.graph[0].op if op.type == op_type)


def const_tensor(model):
    return air_op(model, "Const").attr["value"].t


# ------------------------------------------------------------------ MINDIR: crafted cases
def _set(obj, **fields):
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(obj, name)[:] = value
        else:
            setattr(obj, name, value)


def _param(model):
    return model.graph.parameter[0]          # fc.weight, dims [3, 4], float32 raw_data


def _huge_constant(model):
    t = constant(model, A.TENSORS).attribute[0].tensors[0]
    t.ClearField("raw_data")
    t.dims[:] = [2 ** 40, 2 ** 20]


def _cycle(model):
    mm, add = node(model, "MatMul"), node(model, "Add")
    mm.input[0] = add.output[0]              # MatMul reads Add, which reads MatMul


def _add_string_attr(model):
    prim = next(p for p in model.primitives if p.op_type == "Add")
    prim.attribute.add(name="format", type=A.STRING, s=b"\xff\xfeNCHW")


def _reserved_name(model):
    _param(model).ref_key = "construct"


def _typed_data(count):
    def edit(model):
        t = _param(model)
        t.ClearField("raw_data")
        t.float_data[:] = [0.5] * count
    return edit


MINDIR_CASES = [
    # (case id, edit of the ModelProto or of the bytes, cause phrase)
    ("raw_data_short", lambda m: _set(_param(m), raw_data=_param(m).raw_data[:-1]), "only 47 bytes back it"),
    ("raw_data_not_multiple", lambda m: _set(_param(m), raw_data=_param(m).raw_data + b"\0"),
     "raw_data holds 49 bytes"),
    ("constant_raw_data", lambda m: _set(constant(m, A.TENSORS).attribute[0].tensors[0], raw_data=b"\0" * 6),
     "raw_data holds 6 bytes"),
    ("node_without_output", lambda m: node(m, "MatMul").ClearField("output"), "has no output"),
    ("constant_without_output", lambda m: constant(m, A.TUPLE).ClearField("output"), "has no output"),
    ("constant_without_value", lambda m: constant(m, A.BOOL).ClearField("attribute"), "Constant without a value"),
    ("huge_dims_no_data", _huge_constant, "but only 0 bytes back it"),
    ("dims_over_64", lambda m: _set(_param(m), dims=[1] * 65), "65 dims; at most 64"),
    ("negative_dim", lambda m: _set(_param(m), dims=[-3, 4]), "negative dims"),
    ("zero_size_huge_dims", lambda m: _set(_param(m), dims=[0, 2 ** 62], raw_data=b""), "more than numpy can address"),
    ("unknown_dtype", lambda m: _set(_param(m), data_type=999), "data_type 999 is not a MINDIR tensor type"),
    ("float_data_short", _typed_data(3), "only 12 bytes back it"),
    ("float_data_long", _typed_data(13), "float_data holds 13 values"),
    ("input_dims", lambda m: _set(m.graph.input[0].tensor[0], dims=[-5, 4]), "dims are sizes"),
    ("input_dtype", lambda m: _set(m.graph.input[0].tensor[0], data_type=77), "data_type 77"),
    ("undefined_input", lambda m: _set(node(m, "MatMul"), input=["Tiny:x", "Tiny:ghost"]), "'Tiny:ghost', which no"),
    ("cycle", _cycle, "a missing value or a cycle"),
    ("undefined_output", lambda m: _set(m.graph.output[0], name="Tiny:nowhere"), "graph output 'Tiny:nowhere'"),
    ("tensor_value_without_tensor", lambda m: constant(m, A.TENSORS).attribute[0].ClearField("tensors"),
     "holds no tensor"),
    ("string_attr_not_utf8", _add_string_attr, "is not valid UTF-8"),
    ("reserved_parameter_name", _reserved_name, "attribute of GraphCell itself"),
    ("empty_parameter_name", lambda m: _set(_param(m), ref_key="", name=""), "has no name"),
    ("missing_primitive", lambda m: _set(node(m, "MatMul"), op_type="REF::Nope:1"), "reads 'Nope:1'"),
    ("sub_graph_call", lambda m: _set(node(m, "MatMul"), op_type="Tiny:sub"), "sub-graph calls"),
    ("no_graph", lambda m: m.ClearField("graph"), "no graph"),
    ("sub_graph_reads_nothing", lambda m: m.functions.add(name="f").node.add(
        op_type=node(m, "MatMul").op_type, output=["f:o"], input=["f:nowhere"]), "reads 'f:nowhere'"),
    ("name_not_utf8", invalid_utf8(b"Tiny:CNode_4", b"Tiny:CNode\xff4"), "string field graph.node[3].output is not valid UTF-8"),
    ("op_type_not_utf8", invalid_utf8(b"REF::MatMul", b"REF::Mat\xc3(l"), "op_type is not valid UTF-8"),
    ("input_not_utf8", invalid_utf8(b"Tiny:x", b"Tiny:\xfe"), "is not valid UTF-8"),
    ("user_info_not_utf8", OnBytes(lambda data: swap_bytes(b"VALZ", b"V\xffLZ", edited(
        data, "mindir", lambda m: m.user_info.update({"KEYZ": "VALZ"})))), "user_info['KEYZ']"),
    ("too_deep", OnBytes(lambda data: data + nested([7, 1, 5] + [17] * 150)), "does not parse"),
    ("truncated", OnBytes(lambda data: data[: len(data) // 2]), "does not parse"),
]


def test_graph_cell_from_a_file_name_reads_the_same_way(seeds, tmp_path):
    path = write(tmp_path, "mindir", "cell", edited(seeds["mindir"], "mindir", lambda m: _set(_param(m), dims=[-1])))
    with pytest.raises(ExportError, match="negative dims") as info:
        msjax.nn.GraphCell(path)
    assert path in str(info.value)


def test_unsupported_primitive_stays_unsupported_op_error(seeds, tmp_path):
    def rename(m):
        next(p for p in m.primitives if p.op_type == "Add").op_type = "FancyAdd"
    path = write(tmp_path, "mindir", "fancy", edited(seeds["mindir"], "mindir", rename))
    with pytest.raises(UnsupportedOpError, match="FancyAdd") as info:
        read("mindir", path)
    assert path in str(info.value)


def test_declared_size_is_refused_before_allocating(seeds, tmp_path):
    path = write(tmp_path, "mindir", "huge", edited(seeds["mindir"], "mindir", _huge_constant))
    tracemalloc.start()
    try:
        with pytest.raises(ExportError, match="bytes back it"):
            read("mindir", path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2 ** 20, peak


def test_a_node_that_cannot_run_is_an_export_error(seeds, tmp_path):
    def bad_shape(m):                        # Reshape's target shape no longer fits the bias
        tup = next(n for n in m.graph.node if n.op_type == "Constant" and n.attribute[0].type == A.TUPLE
                   and [v.ints[0] for v in n.attribute[0].values] == [1, 3])
        tup.attribute[0].values[1].ints[0] = 7
    path = write(tmp_path, "mindir", "reshape", edited(seeds["mindir"], "mindir", bad_shape))
    cell = read("mindir", path)
    with pytest.raises(ExportError, match="Reshape") as info:
        cell(Tensor(X))
    assert path in str(info.value)


def test_valid_seed_still_runs(seeds, tmp_path):
    out = read("mindir", write(tmp_path, "mindir", "good", seeds["mindir"]))(Tensor(X))
    assert out.shape == (3, 2)
    graph = read("air", write(tmp_path, "air", "good", seeds["air"]))
    assert graph(X)[0].shape == (3, 2)
    assert read("meta", write(tmp_path, "meta", "good", seeds["meta"])).graph.node


# ------------------------------------------------------------------ AIR: crafted cases
def _air_set(op_type, **fields):
    return lambda m: _set(air_op(m, op_type), **fields)


def _data_desc(**fields):
    return lambda m: _set(air_op(m, "Data").output_desc[0].shape, **fields)


def _const_dims(dims):
    return lambda m: _set(const_tensor(m).desc.shape, dim=dims)


def _air_cycle(model):
    ops = model.graph[0].op
    matmul = air_op(model, "MatMulV2")
    matmul.input[0] = f"{air_op(model, 'BiasAdd').name}:0"
    assert list(ops).index(matmul) < list(ops).index(air_op(model, "BiasAdd"))


def _const_without_value(model):
    del air_op(model, "Const").attr["value"]


def _bad_attr_string(model):
    air_op(model, "BiasAdd").attr["data_format"].s = b"\xffNCHW"


AIR_CASES = [
    ("data_without_output_desc", lambda m: air_op(m, "Data").ClearField("output_desc"), "has no output_desc"),
    ("data_dims_over_64", _data_desc(dim=[1] * 65), "at most 64"),
    ("data_negative_dim", _data_desc(dim=[-9, 4]), "dims are sizes"),
    ("data_unknown_dtype", lambda m: _set(air_op(m, "Data").output_desc[0], dtype=999), "DataType 999"),
    ("data_index", lambda m: air_op(m, "Data").attr["index"].__setattr__("i", 5), "has index 5"),
    ("const_data_short", lambda m: _set(const_tensor(m), data=const_tensor(m).data[:-1]), "only 47 bytes back it"),
    ("const_data_long", lambda m: _set(const_tensor(m), data=const_tensor(m).data + b"\0"), "49 bytes do not fill"),
    ("const_dims_over_64", _const_dims([1] * 65), "65 dims; at most 64"),
    ("const_negative_dim", _const_dims([-1, 12]), "negative dims"),
    ("const_huge_dims_no_data", lambda m: (_const_dims([2 ** 20, 2 ** 20])(m), _set(const_tensor(m), data=b"")),
     "but only 0 bytes back it"),
    ("const_unknown_dtype", lambda m: _set(const_tensor(m).desc, dtype=4242), "DataType 4242"),
    ("const_without_value", _const_without_value, "has no tensor 'value'"),
    ("undefined_input", lambda m: _set(air_op(m, "Relu"), input=["ghost:0"]), "no earlier op is named 'ghost'"),
    ("cycle", _air_cycle, "a missing op or a cycle"),
    ("bad_reference", lambda m: _set(air_op(m, "Relu"), input=["x"]), "is not '<op name>:<output index>'"),
    ("undefined_graph_output", lambda m: (_set(m.graph[0], output=["nope:0"]), m.graph[0].op.pop()),
     "graph output reads 'nope:0'"),
    ("attr_not_utf8", _bad_attr_string, "is not valid UTF-8"),
    ("unknown_op_type", _air_set("Relu", type="Relu6000"), "no semantics for op type(s) ['Relu6000']"),
    ("no_graph", lambda m: m.ClearField("graph"), "holds no graph"),
    ("name_not_utf8", invalid_utf8(b"fc.weight", b"fc.w\xffight"), "does not parse"),
    ("too_deep", OnBytes(lambda data: data + nested([7, 6, 10, 2] + [10, 2, 2] * 60)), "does not parse"),
    ("truncated", OnBytes(lambda data: data[: len(data) // 3]), "does not parse"),
]


def test_air_output_index_the_producer_lacks(seeds, tmp_path):
    path = write(tmp_path, "air", "index", edited(seeds["air"], "air", _air_set("Relu", input=["x:3"])))
    graph = from_air.load(path, jit=False)
    with pytest.raises(ExportError, match="'x:3', an output its producer does not have") as info:
        graph(X)
    assert path in str(info.value)


# ------------------------------------------------------------------ graph.meta: crafted cases
META_CASES = [
    ("no_graph", lambda m: m.ClearField("graph"), "holds no graph"),
    ("name_not_utf8", invalid_utf8(b"Default/", b"Def\xffult/"), "is not valid UTF-8"),
    ("too_deep", OnBytes(lambda data: data + nested([4, 5, 2] + [18] * 150)), "does not parse"),
    ("truncated", OnBytes(lambda data: data[: len(data) // 2]), "does not parse"),
]


#: every crafted case: (reader kind, case id, edit, cause phrase)
MALFORMED = [(kind, *case) for kind, cases in (("mindir", MINDIR_CASES), ("air", AIR_CASES), ("meta", META_CASES))
             for case in cases]
#: readers whose crafted cases raise ExportError itself (no subclass such as UnsupportedOpError)
EXACTLY_EXPORT_ERROR = {"mindir"}


@pytest.mark.parametrize("kind, case_id, edit, cause", MALFORMED, ids=[f"{c[0]}-{c[1]}" for c in MALFORMED])
def test_malformed_file_is_an_export_error(seeds, tmp_path, kind, case_id, edit, cause):
    path = write(tmp_path, kind, case_id, apply(seeds[kind], kind, edit))
    with pytest.raises(ExportError) as info:
        read(kind, path)
    if kind in EXACTLY_EXPORT_ERROR:
        assert type(info.value) is ExportError, info.value
    assert path in str(info.value)
    assert cause in str(info.value)


# ------------------------------------------------------------------ random mutations
INTERESTING = [-2 ** 40, -2, -1, 0, 1, 2, 3, 63, 64, 65, 255, 2 ** 31 - 1, 2 ** 40, 2 ** 62]


def _messages(model):
    out, stack = [], [model]
    while stack:
        m = stack.pop()
        out.append(m)
        for f, v in m.ListFields():
            if f.type != FD.TYPE_MESSAGE:
                continue
            if f.message_type.GetOptions().map_entry:
                if f.message_type.fields_by_name["value"].type == FD.TYPE_MESSAGE:
                    stack.extend(v[k] for k in v)
            else:
                stack.extend(v if f.is_repeated else [v])
    return out


def _strings(messages):
    names = [""]
    for m in messages:
        for f, v in m.ListFields():
            if f.type == FD.TYPE_STRING:
                names.extend(v if f.is_repeated else [v])
    return names


def _new_value(rng, f, names, old=None):
    if f.type == FD.TYPE_STRING:
        return rng.choice(names)
    if f.type == FD.TYPE_BYTES:
        old = old or b""
        return old[: rng.randrange(len(old) + 1)] if rng.random() < 0.5 else old + rng.randbytes(rng.randint(1, 5))
    if f.type in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return rng.uniform(-1e3, 1e3)
    if f.type == FD.TYPE_BOOL:
        return rng.random() < 0.5
    if f.type == FD.TYPE_ENUM:
        return rng.choice([e.number for e in f.enum_type.values])
    return rng.choice(INTERESTING)


def _mutate_repeated(rng, m, f, names):
    values = getattr(m, f.name)
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        if len(values):
            del values[rng.choice(list(values))]
        return
    roll = rng.random()
    if roll < 0.35 and len(values):
        del values[rng.randrange(len(values))]
    elif roll < 0.45:
        del values[:]
    elif f.type == FD.TYPE_MESSAGE:
        values.add().CopyFrom(values[rng.randrange(len(values))]) if len(values) else values.add()
    else:
        values.append(_new_value(rng, f, names))


def mutate_fields(rng, model):
    """1-3 random field edits anywhere in ``model``: values, deletions, duplications, clears."""
    messages = _messages(model)
    names = _strings(messages)
    for _ in range(rng.randint(1, 3)):
        m = rng.choice(messages)
        if not m.DESCRIPTOR.fields:
            continue
        f = rng.choice(m.DESCRIPTOR.fields)
        try:
            if f.is_repeated:
                _mutate_repeated(rng, m, f, names)
            elif f.type == FD.TYPE_MESSAGE:
                m.ClearField(f.name) if rng.random() < 0.5 else getattr(m, f.name).SetInParent()
            else:
                setattr(m, f.name, _new_value(rng, f, names, getattr(m, f.name)))
        except (ValueError, TypeError, OverflowError):
            pass                              # a value the field type refuses: no edit
    return model.SerializePartialToString()


def mutate_bytes(rng, data):
    data = bytearray(data)
    if rng.random() < 0.2:
        return bytes(data[: rng.randrange(len(data))])
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data))
        data[i] = rng.choice([0x00, 0xFF, 0x80, 0x7F, rng.randrange(256), data[i] ^ 1 << rng.randrange(8)])
    return bytes(data)


@pytest.mark.parametrize("kind, cases", [("mindir", 300), ("air", 300), ("meta", 150)])
def test_random_mutations_raise_only_export_error(seeds, tmp_path, kind, cases):
    rng = random.Random(f"hostile-{kind}")
    failures = []
    for case in range(cases):
        if case % 2:
            data = mutate_bytes(rng, seeds[kind])
        else:
            data = mutate_fields(rng, MESSAGES[kind].FromString(seeds[kind]))
        path = write(tmp_path, kind, f"case{case}", data)
        try:
            read(kind, path)
        except ExportError as err:
            if path not in str(err):
                failures.append((case, f"no file name: {err}"))
        except Exception as err:              # noqa: BLE001 - what the test exists to catch
            failures.append((case, f"{type(err).__name__}: {err}"))
    assert not failures, failures[:10]
