"""The one list of jaxpr primitives the exporters know, and each format's spelling of them.

One row per primitive: its kind and the op each format writes for it (MINDIR primitive, AIR graph
engine op type, ONNX op type, graph.meta anf_ir name). ``None``: the format does not write it
(graph.meta then CamelCases the primitive's name).

``rules.rules_for`` turns a format's column into its emitter's rule table: a primitive of kind
"unary", "binary", "reduce" or "arg" is written by the emitter's factory for that kind, which gets
the spelled name (``factory("Exp")``); any other primitive the column names needs a rule of the
emitter's own (it may write more than the one op named here, e.g. ONNX rsqrt is
Reciprocal(Sqrt(x)); the column names the op that makes the result). A new op is one row here,
one rule where the kind has no factory, and one test line.

>>> spelling("MINDIR", "div"), spelling("AIR", "div"), spelling("ONNX", "div")
('RealDiv', 'RealDiv', 'Div')
"""
from __future__ import annotations

__all__ = ["FORMATS", "TABLE", "SYMBOLIC", "spelling", "column"]

#: the columns of TABLE, in order
FORMATS = ("MINDIR", "AIR", "ONNX", "graph.meta")

U, B, R, A, X = "unary", "binary", "reduce", "arg", "other"

#: primitive: (kind, MINDIR, AIR, ONNX, graph.meta); kind X: no factory, each format has its own rule
TABLE = {
    # elementwise, one input
    "neg": (U, "Neg", "Neg", "Neg", "Neg"),
    "exp": (U, "Exp", "Exp", "Exp", "Exp"),
    "exp2": (U, None, "Pow", "Pow", None),
    "expm1": (U, None, "Expm1", "Sub", None),
    "log": (U, "Log", "Log", "Log", "Log"),
    "log1p": (U, "Log1p", "Log1p", "Log", None),
    "tanh": (U, "Tanh", "Tanh", "Tanh", "Tanh"),
    "logistic": (U, "Sigmoid", "Sigmoid", "Sigmoid", "Sigmoid"),
    "sqrt": (U, "Sqrt", "Sqrt", "Sqrt", "Sqrt"),
    "rsqrt": (U, "Rsqrt", "Rsqrt", "Reciprocal", "Rsqrt"),
    "square": (U, "Square", "Square", "Mul", "Square"),
    "abs": (U, "Abs", "Abs", "Abs", "Abs"),
    "sign": (U, "Sign", "Sign", "Sign", "Sign"),
    "erf": (U, "Erf", "Erf", "Erf", "Erf"),
    "erfc": (U, "Erfc", None, None, None),
    "floor": (U, "Floor", "Floor", "Floor", None),
    "ceil": (U, "Ceil", "Ceil", "Ceil", None),
    "sin": (U, "Sin", "Sin", "Sin", None),
    "cos": (U, "Cos", "Cos", "Cos", None),
    "tan": (U, None, None, "Tan", None),
    "is_finite": (U, None, "IsFinite", None, None),
    "not": (U, "LogicalNot", "LogicalNot", "Not", "LogicalNot"),
    "copy": (U, "Depend", "Identity", "Identity", "Depend"),
    "copy_p": (U, None, "Identity", None, "Depend"),
    "stop_gradient": (U, None, "Identity", None, None),
    # elementwise, two inputs
    "add": (B, "Add", "Add", "Add", "Add"),
    "add_any": (B, None, "Add", None, "AddN"),
    "sub": (B, "Sub", "Sub", "Sub", "Sub"),
    "mul": (B, "Mul", "Mul", "Mul", "Mul"),
    "div": (B, "RealDiv", "RealDiv", "Div", "RealDiv"),
    "rem": (B, None, None, "Mod", None),
    "max": (B, "Maximum", "Maximum", "Max", "Maximum"),
    "min": (B, "Minimum", "Minimum", "Min", "Minimum"),
    "pow": (B, "Pow", "Pow", "Pow", "Pow"),
    "eq": (B, "Equal", "Equal", "Equal", "Equal"),
    "ne": (B, "NotEqual", "NotEqual", "Not", "NotEqual"),
    "lt": (B, "Less", "Less", "Less", "Less"),
    "le": (B, "LessEqual", "LessEqual", "LessOrEqual", "LessEqual"),
    "gt": (B, "Greater", "Greater", "Greater", "Greater"),
    "ge": (B, "GreaterEqual", "GreaterEqual", "GreaterOrEqual", "GreaterEqual"),
    "and": (B, "LogicalAnd", "LogicalAnd", "And", "LogicalAnd"),
    "or": (B, "LogicalOr", "LogicalOr", "Or", "LogicalOr"),
    "xor": (B, None, None, "Xor", None),
    # reductions over ``axes``
    "reduce_sum": (R, "ReduceSum", "ReduceSum", "ReduceSum", "ReduceSum"),
    "reduce_max": (R, "ReduceMax", "ReduceMax", "ReduceMax", "ReduceMax"),
    "reduce_min": (R, "ReduceMin", "ReduceMin", "ReduceMin", "ReduceMin"),
    "reduce_prod": (R, None, "ReduceProd", "ReduceProd", "ReduceProd"),
    "argmax": (A, None, "ArgMaxV2", "ArgMax", "Argmax"),
    "argmin": (A, None, "ArgMin", "ArgMin", "Argmin"),
    # everything else: each format's own rule
    "integer_pow": (X, "Pow", "Pow", "Mul", "Pow"),
    "round": (X, None, None, "Round", None),
    "convert_element_type": (X, "Cast", "Cast", "Cast", "Cast"),
    "reshape": (X, "Reshape", "Reshape", "Reshape", "Reshape"),
    "squeeze": (X, "Reshape", "Reshape", "Squeeze", "Squeeze"),
    "expand_dims": (X, None, "Reshape", None, "ExpandDims"),
    "broadcast_in_dim": (X, "BroadcastTo", "BroadcastTo", "Expand", "BroadcastTo"),
    "transpose": (X, "Transpose", "Transpose", "Transpose", "Transpose"),
    "select_n": (X, "Select", "Select", "Where", "Select"),
    "clamp": (X, None, "ClipByValue", "Max", "ClipByValue"),
    "concatenate": (X, "Concat", "ConcatV2", "Concat", "Concat"),
    "split": (X, "StridedSlice", None, "Split", None),
    "stack": (X, "Stack", None, "Concat", None),
    "rev": (X, "ReverseV2", None, "Slice", None),
    "slice": (X, "StridedSlice", "StridedSlice", "Slice", "StridedSlice"),
    "dynamic_slice": (X, None, None, None, "Slice"),
    "tile": (X, None, None, "Tile", None),
    "pad": (X, "Pad", "PadV3", "Pad", "Pad"),
    "iota": (X, "Constant", None, "Identity", "Range"),
    "cumsum": (X, None, "Cumsum", "CumSum", "CumSum"),
    "dot_general": (X, "MatMul", "MatMulV2", "MatMul", "MatMul"),
    "conv_general_dilated": (X, "Conv2D", "Conv2D", "Conv", "Conv2D"),
    "reduce_window_max": (X, "MaxPool", "MaxPool", "MaxPool", "MaxPool"),
    "reduce_window_sum": (X, "AvgPool", None, "AveragePool", "AvgPool"),
    "gather": (X, "Gather", None, "GatherND", "Gather"),
    "scatter-add": (X, None, None, None, "TensorScatterAdd"),
    "select_and_scatter_add": (X, None, None, None, "MaxPoolGrad"),
    "dim_as_value": (X, None, None, "Cast", None),
    "cond": (X, None, None, "If", None),
    "while": (X, None, None, "Loop", None),
}

#: primitives only graphs with symbolic dims contain (a dynamic-shape export input)
SYMBOLIC = frozenset({"dim_as_value"})


def column(format_name):
    """primitive -> (kind, name) for every primitive ``format_name`` writes (one of FORMATS)."""
    index = FORMATS.index(format_name) + 1
    return {prim: (row[0], row[index]) for prim, row in TABLE.items() if row[index] is not None}


def spelling(format_name, primitive):
    """The op ``format_name`` writes for ``primitive`` (None when it writes none)."""
    row = TABLE.get(primitive)
    return None if row is None else row[FORMATS.index(format_name) + 1]
