"""msjax's errors: one small hierarchy, all in this module.

Every error says the fact, the name (file, parameter, layer) and, where one exists, the fix.
Errors about bad input are ``ValueError`` subclasses, so code written against MindSpore's
``ValueError``/``RuntimeError`` handling keeps working: where MindSpore 2.10 raises ``RuntimeError``
for the same situation (``load_param_into_net`` shape/dtype mismatches, a MINDIR that cannot be
loaded), the class is also a ``RuntimeError``. ``load_checkpoint``'s failures (missing, corrupt,
wrong ``dec_key``, CRC) are ``ValueError`` only, as in MindSpore.
"""


class MsjaxError(Exception):
    """Base class of every error msjax raises on purpose."""


class _NamesFile:
    """Mixin: ``file=`` (when given) starts the message and is kept as ``.file``."""

    def __init__(self, message, *, file=None):
        self.file = None if file is None else str(file)
        super().__init__(f"{self.file}: {message}" if self.file else message)


class CheckpointError(_NamesFile, MsjaxError, ValueError):
    """A checkpoint file is unreadable: truncated, corrupt, wrong key, bad CRC, unknown dtype."""


class _WriteFailure:
    """Mixin for save/export write errors: an ``OSError`` too, carrying the ``errno``."""

    def __init__(self, message, *, file=None, errno=None):
        super().__init__(message, file=file)
        self.errno = errno

    def __reduce__(self):      # OSError's errno slot does not survive pickling by default
        return _rebuild_write_error, (type(self), self.args[0], self.file, self.errno)


class CheckpointWriteError(_WriteFailure, CheckpointError, OSError):
    """A save could not be written (disk full, quota, file too large, I/O error, no permission).

    The previous file is untouched and nothing is left behind: the write went to a temporary
    file, which is removed.
    """


class ParameterLoadError(MsjaxError, ValueError, RuntimeError):
    """Parameters and a network disagree: missing or unexpected names, shapes, ambiguous matches.

    Also a ``RuntimeError``: MindSpore's ``load_param_into_net`` raises one for shape and dtype
    mismatches."""


class ExportError(_NamesFile, MsjaxError, ValueError, RuntimeError):
    """A network cannot be exported, or an exported file cannot be read back.

    Also a ``RuntimeError``: MindSpore's ``load`` raises one for a MINDIR it cannot load (a missing
    file is a ``ValueError`` there, and here too)."""


class ExportWriteError(_WriteFailure, ExportError, OSError):
    """An exported file could not be written; the previous file is untouched."""


class UnsupportedOpError(ExportError):
    """The network uses primitives an exporter has no rule for (all of them are listed)."""


class DatasetError(MsjaxError, ValueError, RuntimeError):
    """A dataset cannot be read or a pipeline step fails: missing or corrupt files, bad columns,
    rows that cannot be batched. Also a ``RuntimeError``, as MindSpore's pipeline errors are."""


class LayerArgumentError(MsjaxError, ValueError):
    """A layer or op got an argument value it cannot use (names the layer, the argument and what is allowed)."""


def _rebuild_write_error(cls, message, file, errno):
    error = cls(message, errno=errno)        # ``message`` already starts with the file name
    error.file = file
    return error
