"""The check every emitter runs first: are all primitives of a graph in its rule table?

>>> check_supported(graph, RULES, "ONNX")          # doctest: +SKIP
"""
from __future__ import annotations

from collections import OrderedDict

from msjax.errors import UnsupportedOpError

__all__ = ["check_supported"]


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
            layer = node.source or "<top level>"
            if layer not in layers:
                layers.append(layer)
    if missing:
        lines = "; ".join(f"{op} (in {', '.join(layers)})" for op, layers in missing.items())
        error = UnsupportedOpError(
            f"cannot export {graph.name} to {format_name}: {len(missing)} unsupported primitive(s): "
            f"{lines}. Rewrite these layers with supported operations or add a rule to the "
            f"{format_name} emitter.")
        error.unsupported = dict(missing)        # primitive -> [layer, ...]
        raise error
