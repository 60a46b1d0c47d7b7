"""The checkpoint files of one prefix: MindSpore's rerun rename (``prefix`` -> ``prefix_<N>``) and
``CheckpointManager``, which lists them and picks the ones the keep policy removes."""
from __future__ import annotations

import itertools
import os
import shutil
import stat
import time
import warnings

__all__ = ["CheckpointManager"]

_order = itertools.count()


def _chg_ckpt_file_name_if_same_exist(directory, prefix, exception=False):
    """MindSpore's rerun rule: ``prefix`` -> ``prefix_<N>`` when files of ``prefix`` already exist."""
    if callable(prefix) or callable(directory):
        return prefix
    suffix_num, pre_len = 0, len(prefix)
    for filename in os.listdir(directory):
        ext = os.path.splitext(filename)[-1]
        breakpoint_file = filename.endswith("_breakpoint.ckpt")
        if exception != breakpoint_file or (not exception and ext not in (".ckpt", ".safetensors", ".orbax")):
            continue
        if filename.startswith(prefix) and len(filename) > pre_len and not filename[pre_len].isalpha():
            index = filename[pre_len:].find("-")
            if index == 0:
                suffix_num = max(suffix_num, 1)
            elif index != -1:
                num = filename[pre_len + 1:pre_len + index]
                if num.isdigit():
                    suffix_num = max(suffix_num, int(num) + 1)
    return f"{prefix}_{suffix_num}" if suffix_num else prefix


class _CheckpointManager:
    """The checkpoint files of one prefix in one directory, oldest first."""

    def __init__(self, fmt="ckpt", clock=time.time):
        self._format = fmt
        self._clock = clock           # ModelCheckpoint passes its module's clock (tests swap it)
        self._files = []
        self._saved_at = {}  # path -> (clock time, order) of the files this callback wrote

    def record(self, path):
        self._saved_at[path] = (self._clock(), next(_order))

    def _age(self, path):
        if path in self._saved_at:
            return self._saved_at[path]
        return (os.path.getmtime(path), -1)

    @property
    def ckpoint_num(self):
        return len(self._files)

    def update_ckpoint_filelist(self, directory, prefix):
        ext = f".{self._format}"
        self._files = [os.path.join(directory, f) for f in os.listdir(directory)
                       if f.endswith(ext) and f.startswith(prefix + "-")
                       and not any(c.isalpha() for c in f[len(prefix):-len(ext)])]

    def remove_ckpoint_file(self, path):
        try:
            if os.path.isdir(path):       # an orbax checkpoint is a directory
                shutil.rmtree(path)
            else:
                os.chmod(path, stat.S_IWRITE | stat.S_IREAD)
                os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            warnings.warn(f"ModelCheckpoint: could not remove the old checkpoint {path}: {err}", RuntimeWarning, stacklevel=2)
            return
        if path in self._files:
            self._files.remove(path)
        self._saved_at.pop(path, None)

    def remove_oldest_ckpoint_file(self):
        """Remove the oldest file now (MindSpore's method; ModelCheckpoint itself removes only
        after the next file is committed, through ``rotation``)."""
        if self._files:
            self.remove_ckpoint_file(min(self._files, key=self._age))

    def keep_one_ckpoint_per_minutes(self, minutes, cur_time):
        """Remove now all but the oldest file written in the last ``minutes`` (MindSpore's method)."""
        for path in self.rotation(0, minutes, 0, cur_time):
            self.remove_ckpoint_file(path)

    def rotation(self, keep_max, per_n, since_last_keep, now):
        """The old files MindSpore's keep policy removes for the next save (not yet removed).

        ``keep_checkpoint_max``: the oldest file once ``keep_max`` exist; else
        ``keep_checkpoint_per_n_minutes``: all but the oldest file of the last ``per_n`` minutes,
        when the previous save was less than ``per_n`` minutes ago.
        """
        if keep_max and 0 < keep_max <= len(self._files):
            return [min(self._files, key=self._age)]
        if per_n and per_n > 0 and since_last_keep < per_n * 60:
            window = [f for f in self._files if now - self._age(f)[0] < 60 * per_n]
            if window:
                oldest = min(window, key=self._age)
                return [f for f in window if f != oldest]
        return []


CheckpointManager = _CheckpointManager      # MindSpore's name for the same private helper
