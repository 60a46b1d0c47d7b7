"""``warn_ignored``: one UserWarning per accepted-but-ignored MindSpore argument per process.

msjax keeps MindSpore's signatures; an argument msjax accepts but cannot honour (mixed precision
levels, dataset sinking, unknown ``**kwargs``) warns the first time it is passed a value that
would change results, naming the argument and why, and is silent after that.
"""
from __future__ import annotations

import threading
import warnings

_warned = set()
_lock = threading.Lock()     # saves warn from async writer threads too


def warn_ignored(owner, argument, why, *, stacklevel=3):
    """Warn once per (``owner``, ``argument``) that ``owner`` ignores ``argument`` because ``why``.

    >>> warn_ignored("Model", "boost_level='O1'", "msjax has no boost")   # doctest: +SKIP
    """
    key = (owner, argument.split("=")[0])
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(f"{owner}: {argument} is ignored: {why}", UserWarning, stacklevel=stacklevel)
