"""SequentialCell and CellList: children stored as attributes "0", "1", ... (or OrderedDict keys).

Parameter names follow MindSpore: ``<container path>.<index or key>.<param>``, e.g.
``layer1.0.conv1.weight``.

>>> seq = nn.SequentialCell([nn.Dense(2, 3), nn.ReLU()])
>>> [name for name, _ in seq.parameters_and_names()]
['0.weight', '0.bias']
"""
from __future__ import annotations

from collections import OrderedDict

from msjax.nn.cell import Cell

__all__ = ["SequentialCell", "CellList"]


def _check_cell(cell, owner):
    if not isinstance(cell, Cell):
        raise TypeError(f"{owner}: every element must be a Cell, got {type(cell).__name__}")
    return cell


class _CellContainer(Cell):
    """Shared list behaviour: children in order, named by index unless given keys."""

    def _prefix(self):
        """The name prefix of this container's parameters (e.g. "layer1."), read off a child parameter."""
        for path, param in self.parameters_and_names():
            if param.name.endswith(path):
                return param.name[: len(param.name) - len(path)]
        return ""

    def _add(self, key, cell):
        prefix = self._prefix()
        object.__setattr__(self, "_auto_prefix", False)
        try:
            setattr(self, key, cell)
        finally:
            object.__setattr__(self, "_auto_prefix", True)
        cell.update_parameters_name(f"{prefix}{key}.")

    def _items(self):
        return list(self.name_cells().items())

    def _reset(self, items):
        prefix = self._prefix()
        for key, _ in self._items():
            delattr(self, key)
        for key, cell in items:
            object.__setattr__(self, "_auto_prefix", False)
            setattr(self, key, cell)
            object.__setattr__(self, "_auto_prefix", True)
            cell.update_parameters_name(f"{prefix}{key}.")

    def __len__(self):
        return len(self.name_cells())

    def __iter__(self):
        return iter(self.name_cells().values())

    def _index(self, index):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"{type(self).__name__}: index {index} out of range for {n} cells")
        return index % n

    def __getitem__(self, index):
        items = self._items()
        if isinstance(index, slice):
            return type(self)([cell for _, cell in items[index]])
        if isinstance(index, str):
            return self.name_cells()[index]
        return items[self._index(index)][1]

    def __setitem__(self, index, cell):
        items = self._items()
        i = self._index(index)
        items[i] = (items[i][0], _check_cell(cell, type(self).__name__))
        self._reset(items)

    def __delitem__(self, index):
        items = [cell for _, cell in self._items()]
        if isinstance(index, slice):
            del items[index]
        else:
            del items[self._index(index)]
        self._reset([(str(i), cell) for i, cell in enumerate(items)])

    def append(self, cell):
        """Add ``cell`` at the end, named by its index."""
        self._add(str(len(self)), _check_cell(cell, type(self).__name__))
        return self


class SequentialCell(_CellContainer):
    """Run cells in order: ``SequentialCell([a, b])``, ``SequentialCell(a, b)`` or an OrderedDict."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], (OrderedDict, dict)):
            items = list(args[0].items())
        elif len(args) == 1 and isinstance(args[0], list):
            items = [(str(i), cell) for i, cell in enumerate(args[0])]
        else:
            items = [(str(i), cell) for i, cell in enumerate(args)]
        for key, cell in items:
            setattr(self, key, _check_cell(cell, "SequentialCell"))

    def construct(self, input_data):
        for cell in self.name_cells().values():
            input_data = cell(input_data)
        return input_data


class CellList(_CellContainer):
    """A list of cells (no construct): index, iterate, ``append``, ``extend``, ``insert``."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        cells = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else args
        for i, cell in enumerate(cells):
            setattr(self, str(i), _check_cell(cell, "CellList"))

    def extend(self, cells):
        for cell in cells:
            self.append(cell)
        return self

    def insert(self, index, cell):
        items = [c for _, c in self._items()]
        items.insert(index, _check_cell(cell, "CellList"))
        self._reset([(str(i), c) for i, c in enumerate(items)])
