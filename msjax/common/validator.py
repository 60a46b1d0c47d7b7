"""MindSpore's argument checks where their exception type is part of the behaviour.

>>> check_isinstance("save_checkpoint", "crc_check", True, bool)
True
"""
from __future__ import annotations

__all__ = ["NOT_GIVEN", "check_isinstance"]


class _NotGiven:
    """The default of an argument whose absence means something else than None (MindSpore's
    ``export(enc_key=None)`` is an error, no ``enc_key`` is a plain file)."""

    def __repr__(self):
        return "<not given>"


NOT_GIVEN = _NotGiven()


def check_isinstance(func: str, arg_name: str, value, classes):
    """MindSpore's ``Validator.check_isinstance``: ``value`` if it is an instance of ``classes``
    (a class or a tuple), else a ``ValueError`` (not a TypeError, as in MindSpore) naming
    ``func`` and ``arg_name``."""
    classes = classes if isinstance(classes, tuple) else (classes,)
    if not isinstance(value, classes):
        names = " or ".join("None" if c is type(None) else c.__name__ for c in classes)
        raise ValueError(f"For '{func}', the parameter '{arg_name}' must be {names}, got {value!r}")  # noqa: TRY004
    return value
