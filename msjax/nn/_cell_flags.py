"""MindSpore's cell flags: ``Cell(flags=...)``, ``add_flags``, ``get_flags``, ``add_flags_recursive``.

Each flag becomes an attribute of the cell (``net.add_flags(sink_mode=True); net.sink_mode``) and
is listed by ``get_flags()``, as in MindSpore 2.10. msjax compiles no MindSpore graph, so a flag
steers nothing by itself; it is configuration the cell and its users read back.
"""
from __future__ import annotations

_FLAGS = "_func_graph_flags"      # MindSpore's attribute name for the flags dict


class _Flags(dict):
    """The flags dict, hashable by its items: a cell's plain attributes are static in its nnx
    graph, which a compiled call hashes (flag values are hashable, like any static attribute)."""

    def __hash__(self):
        return hash(tuple(self.items()))


class CellFlags:
    """Mixed into ``Cell``. Flags are set through ``Cell.__setattr__``, so a compiled call made
    before ``add_flags`` is not reused with the old values."""

    def add_flags(self, **flags):
        """Set each flag as an attribute of this cell and record it in ``get_flags()``; returns the cell.

        >>> net.add_flags(sink_mode=True).sink_mode
        True
        """
        setattr(self, _FLAGS, _Flags({**self.get_flags(), **flags}))
        for name, value in flags.items():
            setattr(self, name, value)
        return self

    def get_flags(self):
        """The flags added by ``add_flags`` (or ``Cell(flags=...)``), as a dict."""
        return vars(self).get(_FLAGS, {})

    def add_flags_recursive(self, **flags):
        """``add_flags`` on this cell and every cell below it; returns the cell."""
        self.add_flags(**flags)
        for cell in self.cells():
            cell.add_flags_recursive(**flags)
        return self
