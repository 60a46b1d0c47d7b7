"""The persistent cache of compiled cell programs (``set_context(enable_compile_cache=True)``).

JAX's own persistent cache keys an executable by the lowered program, so every process still traces
and lowers the step (1.2 s of ResNet-50's 3 s hot first step) before it can look the executable up.
This cache keys the compiled program by what determines it *before* tracing, so a hit skips tracing,
lowering and compiling: it loads the serialized executable (``jax.experimental.serialize_executable``)
and calls it. The key (sha256) is built from

- the cell graph: the pickled ``nnx`` graphdef (every Cell's class, static attribute and Variable
  metadata) and the call's static arguments and their tree;
- the input signature: shape, dtype, weak type and sharding of every state leaf and argument, and
  whether the state buffers are donated;
- the code: the source of every module a class or function in the graph comes from, of every
  loaded ``msjax`` module and of every other loaded module outside the installed packages
  (MindSpore's rule is the entry script and the local files it imports; this covers those and any
  other local file loaded), or the code objects of classes that have no source file;
- the environment: python, jax, jaxlib, flax, numpy, optax and ml_dtypes versions, the backend
  (platform, its version, device kind and count, the CPU model and flags), ``XLA_FLAGS``,
  ``MSJAX_LOWERING`` and a ``canonical()`` block, msjax's mode, device target and ``jit_config``, and every JAX
  config value except the cache's own settings.

A stale hit is worse than a miss: anything not in the key that changes the program (code reached
only through an installed package other than those named) needs the cache directory deleted, as
MindSpore documents for its own cache. Entries are ``msjax-<key>.prog`` beside JAX's files:
magic, sha256 of the payload, zlib-compressed pickle of the executable and its argument trees. An
entry that is truncated, corrupt or refused by XLA is a miss: the program is compiled and the entry
rewritten. Like JAX's cache, the directory is trusted (loading an executable can run its code).
Hits and misses are counted in ``STATS`` and reported as the JAX monitoring events
``/msjax/compile_cache/hits`` and ``/msjax/compile_cache/misses``.
"""
from __future__ import annotations

import collections
import functools
import hashlib
import io
import logging
import marshal
import os
import pickle
import platform
import sys
import sysconfig
import zlib

import jax
from jax.sharding import SingleDeviceSharding

from msjax import context
from msjax.common import atomic
from msjax.ops import _lowering

MAGIC = b"MSJXPRG1"
STATS: collections.Counter = collections.Counter()
_log = logging.getLogger(__name__)
_IGNORED_CONFIG = {"jax_compilation_cache_dir", "jax_enable_compilation_cache",
                   "jax_persistent_cache_min_compile_time_secs", "jax_persistent_cache_min_entry_size_bytes"}
_VERSIONED = ("jax", "jaxlib", "flax", "numpy", "optax", "ml_dtypes")
_file_digests: dict = {}
_MISSING = object()


class _Uncacheable(Exception):
    """The call's graph or arguments cannot be keyed: it runs through plain ``jax.jit``."""


class _Recorder(pickle.Pickler):
    """A pickler that notes the module of every object, class and function it writes."""

    def __init__(self, file):
        super().__init__(file, protocol=5)
        self.modules = set()
        self.fileless = {}

    def persistent_id(self, obj):
        kind = obj if isinstance(obj, type) else type(obj)
        self.modules.add(kind.__module__)
        if isinstance(getattr(obj, "__module__", None), str) and callable(obj):
            self.modules.add(obj.__module__)
            if not _module_file(obj.__module__):
                self.fileless[f"{obj.__module__}.{getattr(obj, '__qualname__', '?')}"] = obj
        return None


def _module_file(name):
    path = getattr(sys.modules.get(name), "__file__", None)
    return path if path and os.path.isfile(path) else None


def _file_digest(path):
    digest = _file_digests.get(path)
    if digest is None:
        with open(path, "rb") as f:
            digest = _file_digests[path] = hashlib.sha256(f.read()).hexdigest()
    return digest


def _code_digest(obj):
    """The code objects of a class (or function) that has no source file."""
    functions = [obj] if not isinstance(obj, type) else [
        v for k in obj.__mro__ if k.__module__ == obj.__module__ for v in vars(k).values()]
    codes = [f.__code__ for f in functions if hasattr(f, "__code__")]
    return hashlib.sha256(b"".join(marshal.dumps(c) for c in codes)).hexdigest()


def _local_modules():
    """Loaded msjax modules and modules with a source file outside the installed packages."""
    installed = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    installed |= {os.path.join(p, "") for p in installed}
    out = []
    for name, module in list(sys.modules.items()):
        path = _module_file(name) if module is not None else None
        if path and (name.split(".")[0] == "msjax" or not path.startswith(tuple(installed))):
            out.append(name)
    return out


@functools.cache
def _process_part():
    """The key's per-process part: versions, backend, CPU (computed once)."""
    from importlib import metadata
    versions = []
    for dist in _VERSIONED:
        try:
            versions.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            versions.append((dist, None))
    devices = jax.devices()
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = "".join(sorted({line for line in f if line.startswith(("model name", "flags"))}))
    except OSError:
        cpu = platform.processor()
    return repr((sys.version, platform.machine(), versions, devices[0].platform,
                 devices[0].client.platform_version, devices[0].device_kind, len(devices),
                 jax.process_count(), hashlib.sha256(cpu.encode()).hexdigest()))


def _signature(arrays):
    """(shape, dtype, weak type, placement) of each array: a host array or an array on one device is
    placed by that device (host arrays go to the default one, as under ``jax.jit``), others by
    their sharding."""
    default = None
    out = []
    try:
        for x in arrays:
            sharding = getattr(x, "sharding", None)
            if sharding is None:
                if default is None:
                    default = (jax.config.jax_default_device or jax.devices()[0]).id
                place = default
            else:
                place = sharding._device.id if type(sharding) is SingleDeviceSharding else sharding
            out.append((x.shape, x.dtype, getattr(x, "weak_type", False), place))
    except AttributeError as err:
        raise _Uncacheable(str(err)) from None
    return tuple(out)


def key(graphdef, static, signature, donate):
    """The cache key (hex sha256) of one compiled call; raises ``_Uncacheable``."""
    buffer = io.BytesIO()
    recorder = _Recorder(buffer)
    try:
        recorder.dump((graphdef, static))
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        raise _Uncacheable(str(err)) from None
    h = hashlib.sha256(buffer.getvalue())
    h.update(repr((signature, donate)).encode())
    modules = sorted(set(_local_modules()) | recorder.modules)
    code = [(m, _file_digest(_module_file(m)) if _module_file(m) else None) for m in modules]
    code += sorted((name, _code_digest(obj)) for name, obj in recorder.fileless.items())
    config = sorted((k, repr(v)) for k, v in jax.config.values.items() if k not in _IGNORED_CONFIG)
    h.update(repr((code, config, _process_part(), os.environ.get("XLA_FLAGS"), os.environ.get("MSJAX_LOWERING"),
                   getattr(_lowering._state, "mode", None), context.get_context("mode"),
                   context.get_context("device_target"), context.get_context("jit_config"))).encode())
    return h.hexdigest()


def _entry_path(directory, digest):
    return os.path.join(directory, f"msjax-{digest}.prog")


def _load(path, in_tree):
    from jax.experimental import serialize_executable
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        if data[:len(MAGIC)] != MAGIC or hashlib.sha256(data[len(MAGIC) + 32:]).digest() != data[len(MAGIC):len(MAGIC) + 32]:
            raise ValueError("bad magic or checksum")
        blob, stored_in_tree, out_tree = pickle.loads(zlib.decompress(data[len(MAGIC) + 32:]))
        if stored_in_tree != in_tree:
            raise ValueError("argument tree differs")
        return serialize_executable.deserialize_and_load(blob, stored_in_tree, out_tree)
    except Exception as err:   # noqa: BLE001 - any unreadable entry is a miss, never an error
        _log.debug("compile cache entry %s is unusable (%s): compiling", path, err)
        return None


def _store(path, compiled):
    from jax.experimental import serialize_executable
    try:
        blob, in_tree, out_tree = serialize_executable.serialize(compiled)
        payload = zlib.compress(pickle.dumps((blob, in_tree, out_tree), protocol=5), 1)
        atomic.atomic_write(path, lambda f: f.write(MAGIC + hashlib.sha256(payload).digest() + payload), fsync=False)
    except Exception as err:   # noqa: BLE001 - a program that cannot be stored still runs
        _log.debug("compile cache entry %s not written (%s)", path, err)


def call(flat, static, directory, values, dynamic):
    """Run a cell's compiled call (``cell._flat_call``'s ``flat``) through the cache: one program
    per (static arguments, input signature), kept in ``flat.programs``; a call that cannot be keyed
    runs through ``flat.fn`` (plain ``jax.jit``) as with the cache off."""
    try:
        signature = (_signature(values), _signature(dynamic))
        found = flat.programs.get((static, signature), _MISSING)
    except (_Uncacheable, TypeError):
        return flat.fn(static, values, dynamic)
    if found is _MISSING:
        found = flat.programs[static, signature] = program(flat, static, signature, values, dynamic, directory)
    if found is None:
        return flat.fn(static, values, dynamic)
    return found(values, dynamic)


def program(flat, static, signature, values, dynamic, directory):
    """The compiled program for this call: loaded from ``directory``, else traced, compiled and
    stored there; None when the call cannot be keyed."""
    try:
        digest = key(flat.graphdef, static, signature, flat.donate)
    except _Uncacheable as err:
        _log.debug("compile cache: call not keyed (%s)", err)
        return None
    path = _entry_path(directory, digest)
    in_tree = jax.tree.structure(((list(values), tuple(dynamic)), {}))
    compiled = _load(path, in_tree) if os.path.exists(path) else None
    if compiled is not None:
        STATS["hits"] += 1
        jax.monitoring.record_event("/msjax/compile_cache/hits")
        return compiled
    STATS["misses"] += 1
    jax.monitoring.record_event("/msjax/compile_cache/misses")
    # compiled afresh, not taken from JAX's persistent cache: an executable JAX loaded from its
    # cache serializes without its CPU kernels ("Function dot_general.1_kernel not found" on load)
    from jax._src import config as jax_config
    with jax_config.enable_compilation_cache(False):
        compiled = flat.fn.trace(static, values, dynamic).lower().compile()
    os.makedirs(directory, exist_ok=True)
    _store(path, compiled)
    return compiled
