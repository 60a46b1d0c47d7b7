"""``{Parameter: Parameter}`` keyed by identity: what ``Cell.init_parameters_data`` returns."""
from __future__ import annotations

import collections.abc

__all__ = ["ParamMap"]


class ParamMap(collections.abc.Mapping):
    """``{Parameter: Parameter}`` keyed by identity (what ``init_parameters_data`` returns)."""

    def __init__(self, params):
        self._params = {id(p): p for p in params}     # each maps to itself (already initialized)

    def __getitem__(self, param):
        try:
            return self._params[id(param)]
        except KeyError:
            raise KeyError(param) from None

    def __iter__(self):
        return iter(self._params.values())

    def __len__(self):
        return len(self._params)

    def __repr__(self):
        return "{" + ", ".join(f"{p!r}: {p!r}" for p in self._params.values()) + "}"
