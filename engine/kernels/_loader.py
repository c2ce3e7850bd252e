"""Lazy loading of the numba kernels, on-disk cache placement, thread control.

Design note
-----------
Importing :mod:`engine.kernels` must not import numba (about 0.3 s) nor compile
anything.  The ``@njit`` functions live in :mod:`engine.kernels._cpu`, which is
imported on first use by :func:`cpu`.  Every kernel is ``cache=True``: numba
stores the machine code on disk and a restarted agent loads it in milliseconds
instead of recompiling for seconds.

Where the cache goes (numba picks the directory when a function is *decorated*,
i.e. when ``_cpu`` is imported, so the choice is made once per process):

1. ``NUMBA_CACHE_DIR`` set in the environment: numba honours it; we do nothing.
2. Otherwise, if ``engine/kernels/__pycache__`` is writable (a source checkout or
   an editable install): numba's default in-tree cache is used.
3. Otherwise (e.g. installed read-only under ``site-packages``): the cache goes
   to ``$XDG_CACHE_HOME/swarm-tui/numba`` (default ``~/.cache/swarm-tui/numba``).
   We set ``numba.config.CACHE_DIR`` only while ``_cpu`` is being imported and
   restore it afterwards, so other numba users in the process are unaffected.

The cache is keyed by source file timestamp, signature and CPU model/features;
editing a kernel invalidates its entries, and copying the cache to a different
CPU simply misses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent
_lock = threading.Lock()
_cpu_module: ModuleType | None = None
_cache_choice: CacheInfo | None = None


@dataclasses.dataclass(frozen=True)
class CacheInfo:
    """Where numba keeps the compiled kernels for this process.

    Attributes:
        path: the directory (numba adds per-source-file subdirectories under a
            user-provided directory).
        source: ``"NUMBA_CACHE_DIR"``, ``"in-tree"`` or ``"user"``.
    """

    path: str
    source: str


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/swarm-tui/numba``, defaulting to ``~/.cache/swarm-tui/numba``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "swarm-tui" / "numba"


def _dir_writable(path: Path) -> bool:
    """True if ``path`` exists or can be created, and a file can be written in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True


def choose_cache_dir() -> CacheInfo:
    """Apply the policy in the module docstring (without importing numba)."""
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        return CacheInfo(env, "NUMBA_CACHE_DIR")
    in_tree = _PACKAGE_DIR / "__pycache__"
    if _dir_writable(in_tree):
        return CacheInfo(str(in_tree), "in-tree")
    return CacheInfo(str(user_cache_dir()), "user")


def cache_info() -> CacheInfo:
    """The cache directory in use (decided on first call, then fixed)."""
    global _cache_choice
    if _cache_choice is None:
        _cache_choice = choose_cache_dir()
    return _cache_choice


def cpu() -> ModuleType:
    """Import (once) and return :mod:`engine.kernels._cpu`, placing its cache."""
    global _cpu_module
    if _cpu_module is not None:
        return _cpu_module
    with _lock:
        if _cpu_module is None:
            info = cache_info()
            import numba

            saved = numba.config.CACHE_DIR
            if info.source == "user":
                Path(info.path).mkdir(parents=True, exist_ok=True)
                numba.config.CACHE_DIR = info.path
            try:
                _cpu_module = importlib.import_module("engine.kernels._cpu")
            finally:
                numba.config.CACHE_DIR = saved
    return _cpu_module


def dispatchers(*names: str) -> list[Any]:
    """The named numba dispatchers from :mod:`engine.kernels._cpu`."""
    module = cpu()
    return [getattr(module, name) for name in names]


@contextlib.contextmanager
def numba_parallel(threads: int, chunk: int = 0) -> Iterator[int]:
    """Run the body with ``threads`` numba threads and a prange ``chunk`` size.

    ``threads=0`` leaves the pool size as is.  ``numba.set_num_threads`` is per
    calling thread and bounded by ``numba.config.NUMBA_NUM_THREADS``; larger
    requests are clamped.  ``chunk=0`` keeps numba's default schedule (the
    iteration space split into one equal block per thread); ``chunk=k`` makes
    threads take ``k`` iterations at a time from a shared queue
    (``numba.set_parallel_chunksize``), which tolerates a thread being
    descheduled by another process.  Previous values are restored on exit.
    Yields the thread count in effect.
    """
    import numba

    previous_threads = numba.get_num_threads()
    wanted = previous_threads if threads <= 0 else min(threads, numba.config.NUMBA_NUM_THREADS)
    previous_chunk = numba.set_parallel_chunksize(chunk)
    try:
        if wanted != previous_threads:
            numba.set_num_threads(wanted)
        yield wanted
    finally:
        numba.set_parallel_chunksize(previous_chunk)
        if wanted != previous_threads:
            numba.set_num_threads(previous_threads)
