"""The emitter skeleton every format shares: its rule table, the check, the walk, the refusals.

An emitter is one rule per jaxpr primitive. ``rules_for`` builds a format's table from its column
of ``op_table.TABLE`` (factories for the elementwise/reduce kinds, the emitter's own rules for
the rest). ``check_supported`` refuses a graph with primitives the table lacks, listing every one
with the layers that use it; ``walk`` then emits the nodes in order, and a rule that cannot write
its node (a layout, padding or dtype the format has no op for) raises ``UnsupportedOpError``: the
walk goes on and reports every such node at once, in one ``UnsupportedOpError``.

>>> RULES = rules_for("ONNX", {"unary": _simple, "binary": _simple}, {"conv_general_dilated": _conv})  # doctest: +SKIP
>>> check_supported(graph, RULES, "ONNX")                                                             # doctest: +SKIP
>>> walk(graph, "ONNX", emit_node)                                                                    # doctest: +SKIP
"""
from __future__ import annotations

from collections import OrderedDict

from .op_table import column
from msjax.errors import UnsupportedOpError

__all__ = ["rules_for", "check_supported", "walk"]

_ADVICE = "Rewrite these layers with supported operations or add a rule to the {} emitter."


def rules_for(format_name, factories, own):
    """``format_name``'s rule table: primitive -> rule, for every primitive its column names.

    ``factories`` maps a kind ("unary", "binary", "reduce", "arg") to ``factory(name) -> rule``;
    ``own`` maps primitives to the emitter's own rules (they win over a factory). The table and the
    emitter must agree: an own rule for a primitive the column does not name, or a primitive no
    rule writes, is a programming error, found at import.
    """
    spelled = column(format_name)
    stray = sorted(set(own) - set(spelled))
    if stray:
        raise ValueError(f"{format_name} rules for {stray}, which op_table.TABLE does not list for {format_name}")
    table = {}
    for prim, (kind, name) in spelled.items():
        if prim in own:
            table[prim] = own[prim]
        elif kind in factories:
            table[prim] = factories[kind](name)
        else:
            raise ValueError(f"op_table.TABLE lists {prim} ({kind}) for {format_name}, which has no rule for it")
    return table


def _layer(node):
    return node.source or "<top level>"


def check_supported(graph, table, format_name, *, updates=False):
    """Raise ``UnsupportedOpError`` listing every primitive of ``graph`` missing from ``table``.

    Each unsupported primitive is listed once with every layer (``Node.source``) that used it.
    A graph whose construct updates parameters in place (``graph.updates``) needs a format that
    can write them (``updates=True``: MINDIR's Assign); others refuse it, as MindSpore's ONNX
    exporter refuses Assign/AssignAdd.
    """
    written = list(getattr(graph, "updates", None) or ())
    if written and not updates:
        error = UnsupportedOpError(
            f"cannot export {graph.name} to {format_name}: construct updates parameter(s) "
            f"{', '.join(written)} in place (Assign), and a {format_name} graph has no state to "
            f"write them to. Export to MINDIR, which keeps the updates, or move the update out of "
            f"construct.")
        error.unsupported = {"Assign": written}
        raise error
    missing = OrderedDict()
    for node in graph.nodes:
        if node.op not in table:
            layers = missing.setdefault(node.op, [])
            if _layer(node) not in layers:
                layers.append(_layer(node))
    if missing:
        lines = "; ".join(f"{op} (in {', '.join(layers)})" for op, layers in missing.items())
        error = UnsupportedOpError(
            f"cannot export {graph.name} to {format_name}: {len(missing)} unsupported primitive(s): "
            f"{lines}. {_ADVICE.format(format_name)}")
        error.unsupported = dict(missing)        # primitive -> [layer, ...]
        raise error


def walk(graph, format_name, emit_node, placeholder=None):
    """Call ``emit_node(node)`` for every node of ``graph`` in order.

    A node whose rule raises ``UnsupportedOpError`` is noted; ``placeholder(node)`` (when given)
    stands in for its outputs so the later nodes can still be tried. At the end one
    ``UnsupportedOpError`` lists every refused node with its layer and the reason
    (``.unsupported``: primitive -> [layer, ...], as ``check_supported`` gives). Once a node has
    been refused, a later node that fails for another reason ends the walk with that report.
    """
    refused = []
    for node in graph.nodes:
        try:
            emit_node(node)
        except UnsupportedOpError as exc:
            refused.append((node, str(exc)))
            if placeholder is not None:
                placeholder(node)
        except Exception:
            if not refused:
                raise
            break                    # most likely a consequence of an earlier refusal: report those
    if refused:
        _refuse(graph, format_name, refused)


def _refuse(graph, format_name, refused):
    by_op = OrderedDict()
    for node, _ in refused:
        layers = by_op.setdefault(node.op, [])
        if _layer(node) not in layers:
            layers.append(_layer(node))
    lines = "; ".join(f"{node.op} (in {_layer(node)}): {why}" for node, why in refused)
    error = UnsupportedOpError(f"cannot export {graph.name} to {format_name}: {len(refused)} node(s) use a "
                               f"form of their primitive that {format_name} cannot write: {lines}. "
                               f"{_ADVICE.format(format_name)}")
    error.unsupported = dict(by_op)
    raise error
