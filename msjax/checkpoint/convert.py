"""MindSpore 2.10's ``ckpt_to_safetensors`` / ``safetensors_to_ckpt`` (one file, or ``rank*`` dirs).

``processes_num`` converts that many files of a ``rank*`` tree at once, as MindSpore's process pool
does; here on threads (the work is file reading and writing, which runs outside the GIL), so no
process is forked from a JAX program.

>>> ckpt_to_safetensors("lenet.ckpt", save_path="out/", name_map={"fc3.bias": "head.bias"})
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from msjax.checkpoint.serialization import load_checkpoint, save_checkpoint


def _tasks(file_path, save_path, regex, src_suffix, func):
    if os.path.isfile(file_path):
        if not file_path.endswith(src_suffix):
            raise ValueError(f"For {func}, the input file must be a {src_suffix} file, but got {file_path}")
        if regex is not None and not re.findall(regex, file_path):
            raise ValueError(f"For {func}, the input file does not match the regular expression.")
        return [(file_path, save_path or os.path.dirname(file_path) or ".")]
    ranks = sorted(d for d in os.listdir(file_path) if d.startswith("rank")
                   and os.path.isdir(os.path.join(file_path, d)))
    if not ranks:
        raise ValueError(f"For '{func}', no directories starting with 'rank' found in {file_path}.")
    tasks = []
    for rank in ranks:
        src_dir = os.path.join(file_path, rank)
        dst_dir = os.path.join(save_path, rank) if save_path else src_dir
        for name in sorted(os.listdir(src_dir)):
            if name.endswith(src_suffix) and (regex is None or re.search(regex, name)):
                tasks.append((os.path.join(src_dir, name), dst_dir))
    return tasks


def _convert(file_path, save_path, name_map, regex, src, dst, func, processes_num):
    file_path = os.fspath(file_path)
    if not os.path.exists(file_path):
        raise ValueError(f"For {func}, the input path must be a valid path or file, but got {file_path}")
    if save_path and os.path.splitext(save_path)[1]:
        raise ValueError(f"For {func}, the save_path must be a directory, but got '{save_path}'")
    if name_map is not None and not isinstance(name_map, dict):
        raise ValueError(f"For {func}, 'name_map' must be a dict, but got {type(name_map).__name__}")
    if isinstance(processes_num, bool) or not isinstance(processes_num, int):
        raise TypeError(f"For {func}, 'processes_num' must be an int, but got {type(processes_num).__name__}")
    if processes_num < 1:
        raise ValueError(f"For {func}, 'processes_num' must be at least 1, but got {processes_num}")

    def one(task):
        src_file, dst_dir = task
        os.makedirs(dst_dir, exist_ok=True)
        params = load_checkpoint(src_file, format=src)
        if name_map:
            params = OrderedDict((name_map.get(k, k), v) for k, v in params.items())
        out = os.path.join(dst_dir, os.path.basename(src_file).replace("." + src, "." + dst))
        save_checkpoint(params, out, format=dst)

    tasks = _tasks(file_path, save_path, regex, "." + src, func)
    if processes_num == 1 or len(tasks) < 2:
        for task in tasks:
            one(task)
        return
    with ThreadPoolExecutor(max_workers=processes_num) as pool:
        list(pool.map(one, tasks))          # the first failure is raised, after the rest finish


def ckpt_to_safetensors(file_path, save_path=None, name_map=None, file_name_regex=None, processes_num=1):
    """Convert a .ckpt file (or ``rank*/`` dirs of them) to MindSpore safetensors files.

    >>> ckpt_to_safetensors("lenet.ckpt")        # writes lenet.safetensors beside it
    """
    _convert(file_path, save_path, name_map, file_name_regex, "ckpt", "safetensors", "ckpt_to_safetensors",
             processes_num)


def safetensors_to_ckpt(file_path, save_path=None, name_map=None, file_name_regex=None, processes_num=1):
    """Convert a MindSpore safetensors file (or ``rank*/`` dirs of them) to .ckpt files.

    >>> safetensors_to_ckpt("lenet.safetensors", save_path="ckpt/")
    """
    _convert(file_path, save_path, name_map, file_name_regex, "safetensors", "ckpt", "safetensors_to_ckpt",
             processes_num)
