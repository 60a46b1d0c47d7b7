"""op_table: the one list of primitives and each format's spelling; the emitters' tables are its columns."""
import pytest

from msjax_exporters import graph_meta, op_table, rules, to_air, to_mindir, to_onnx, window


@pytest.mark.parametrize("fmt, table", [("MINDIR", to_mindir.RULES), ("AIR", to_air.RULES),
                                        ("ONNX", {**to_onnx.RULES, **to_onnx.SYMBOLIC_RULES})])
def test_each_emitter_writes_exactly_its_column(fmt, table):
    assert set(table) == set(op_table.column(fmt))


def test_symbolic_rules_are_kept_apart():
    assert set(to_onnx.SYMBOLIC_RULES) == op_table.SYMBOLIC & set(op_table.column("ONNX"))
    assert not op_table.SYMBOLIC & set(to_onnx.RULES)


def test_graph_meta_names_are_the_table_column():
    assert graph_meta.OP_TYPES == {p: row[4] for p, row in op_table.TABLE.items() if row[4]}
    assert graph_meta._op_type("erfc") == "Erfc"                  # no name: CamelCased


def test_every_row_has_a_kind_and_a_writer():
    for prim, (kind, *names) in op_table.TABLE.items():
        assert kind in ("unary", "binary", "reduce", "arg", "other"), prim
        assert any(names), prim


def test_rules_for_refuses_a_table_and_emitter_that_disagree():
    unary = {"unary": lambda name: name, "binary": lambda name: name, "reduce": lambda name: name,
             "arg": lambda name: name}
    with pytest.raises(ValueError, match="not_a_primitive"):
        rules.rules_for("ONNX", unary, {"not_a_primitive": None})
    with pytest.raises(ValueError, match="no rule for it"):
        rules.rules_for("ONNX", unary, {})               # "other" primitives need the emitter's own rule


@pytest.mark.parametrize("size, kernel, stride, dilation, pads", [
    (7, 3, 2, 1, (1, 1)), (7, 3, 1, 1, (1, 1)), (6, 2, 2, 1, (0, 0)), (5, 2, 2, 1, (0, 1)),
    (7, 3, 1, 2, (2, 2)), (1, 5, 3, 1, (2, 2)),
])
def test_same_padding(size, kernel, stride, dilation, pads):
    assert window.same_pads(size, kernel, stride, dilation) == pads
    lo, hi = pads
    out = -(-size // stride)                              # SAME: ceil(size / stride) outputs
    assert (size + lo + hi - ((kernel - 1) * dilation + 1)) // stride + 1 == out
