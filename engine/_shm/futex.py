"""Process-shared futex wait/wake on a 32-bit word inside a mapped segment.

Design note
-----------
A futex is the kernel's "sleep until this word changes" primitive.  We call the
raw ``futex(2)`` system call (``SYS_futex`` = 202 on x86-64) through ``ctypes``
because neither the standard library nor glibc wraps it.  We use the *shared*
operations (no ``FUTEX_PRIVATE_FLAG``): the word lives in a ``MAP_SHARED``
mapping of a ``/dev/shm`` file, so the kernel keys the wait queue on
(inode, offset) and a waiter in one process is woken by ``FUTEX_WAKE`` from any
other process that maps the same file, wherever it is mapped.

``FUTEX_WAIT`` atomically checks that the word still holds ``expected`` before
sleeping, which is what makes "read value, re-check condition, wait" free of lost
wake-ups for the futex word itself.  The ``timeout`` is relative and measured on
``CLOCK_MONOTONIC``.

Addresses: :func:`address_of` asks ``ctypes`` for the address of a byte in a
writable buffer once and drops the ``ctypes`` object immediately, so the buffer
keeps no extra export and the segment can still be closed.  The caller must not
use the address after the mapping is closed -- ``FUTEX_WAIT`` on an unmapped
address fails with ``EFAULT`` (reported as ``OSError``), it cannot corrupt memory,
and ``FUTEX_WAKE`` never dereferences the word at all.

``ctypes`` foreign calls release the GIL, so other threads of the waiting process
keep running while it sleeps.

Asymmetric fences (``membarrier(2)``)
-------------------------------------
"Publish, then check whether the other side sleeps" against "announce sleep, then
check for work" is the store-buffer (Dekker) pattern, which x86-TSO does not make
safe without a full fence on *both* sides -- and pure Python cannot issue
``mfence``.  ``membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`` lets the rare side
(the one about to sleep) pay for both: it makes every running thread of every
process registered with ``MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`` pass a full
memory barrier before it returns (one IPI per such CPU, about 1 us here), so the
hot side needs no fence at all.  Every process that uses the bus registers once
(:func:`membarrier_register`); :func:`process_barrier` is called by a side after
it announces that it will sleep and before it re-checks for work.  Where the
kernel or a seccomp filter refuses ``membarrier`` the callers still have their
bounded sleeps, so delivery stays correct, only slower on the unlucky message.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform

__all__ = [
    "SYS_FUTEX",
    "address_of",
    "futex_wait",
    "futex_wake",
    "membarrier_register",
    "process_barrier",
]

SYS_FUTEX = 202  # x86-64; see the check in _load()
SYS_MEMBARRIER = 324
FUTEX_WAIT = 0
FUTEX_WAKE = 1
MEMBARRIER_CMD_QUERY = 0
MEMBARRIER_CMD_GLOBAL_EXPEDITED = 1 << 1
MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED = 1 << 2


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_syscall = None


def _load() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    """Resolve ``syscall(2)`` from libc on first use (no work at import time)."""
    global _syscall
    if _syscall is None:
        if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
            raise OSError(
                f"futex via SYS_futex={SYS_FUTEX} needs Linux x86-64, "
                f"not {platform.system()} {platform.machine()}"
            )
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syscall
        fn.restype = ctypes.c_long
        fn.argtypes = [
            ctypes.c_long,  # number
            ctypes.c_void_p,  # uaddr
            ctypes.c_int,  # futex_op
            ctypes.c_uint32,  # val
            ctypes.c_void_p,  # timeout (struct timespec *) or NULL
            ctypes.c_void_p,  # uaddr2
            ctypes.c_uint32,  # val3
        ]
        _syscall = fn
    return _syscall


def address_of(buf: memoryview, offset: int) -> int:
    """Return the virtual address of ``buf[offset]`` (``buf`` must be writable).

    The word used as a futex must be 4-byte aligned; this is checked.
    """
    if not 0 <= offset <= len(buf) - 4:
        raise ValueError(f"futex word offset {offset} outside a buffer of {len(buf)} bytes")
    c = ctypes.c_char.from_buffer(buf, offset)
    addr = ctypes.addressof(c)
    del c  # release the buffer export at once
    if addr % 4:
        raise ValueError(f"futex word at {addr:#x} is not 4-byte aligned")
    return addr


def futex_wait(addr: int, expected: int, timeout_s: float | None) -> bool:
    """Sleep while the 32-bit word at ``addr`` equals ``expected``.

    Args:
        addr: address from :func:`address_of`.
        expected: the value the caller last read from the word.
        timeout_s: relative timeout in seconds; ``None`` waits without limit.

    Returns:
        ``False`` if the timeout expired, ``True`` otherwise (woken, the word
        already differed, or a signal interrupted the wait -- callers re-check
        their condition in every case).
    """
    fn = _syscall or _load()
    if timeout_s is None:
        ts_ptr = None
    else:
        t = max(0.0, timeout_s)
        sec = int(t)
        ts = _Timespec(sec, int((t - sec) * 1e9))
        ts_ptr = ctypes.addressof(ts)
    rc = fn(SYS_FUTEX, addr, FUTEX_WAIT, expected & 0xFFFFFFFF, ts_ptr, None, 0)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.ETIMEDOUT:
        return False
    if err in (errno.EAGAIN, errno.EINTR):
        return True
    raise OSError(err, f"futex wait at {addr:#x}: {os.strerror(err)}")


def futex_wake(addr: int, n: int = 1) -> int:
    """Wake up to ``n`` waiters on the word at ``addr``; return how many were woken."""
    fn = _syscall or _load()
    rc = fn(SYS_FUTEX, addr, FUTEX_WAKE, min(n, 0x7FFFFFFF), None, None, 0)
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"futex wake at {addr:#x}: {os.strerror(err)}")
    return int(rc)


_barrier_pid = 0  # pid that registered (registration does not survive fork)
_barrier_ok = False


def membarrier_register() -> bool:
    """Register this process as a target of global expedited barriers (idempotent).

    Returns whether :func:`process_barrier` works here.
    """
    global _barrier_pid, _barrier_ok
    pid = os.getpid()
    if _barrier_pid == pid:
        return _barrier_ok
    fn = _syscall or _load()
    mask = fn(SYS_MEMBARRIER, MEMBARRIER_CMD_QUERY, 0, 0, None, None, 0)
    ok = mask > 0 and bool(mask & MEMBARRIER_CMD_GLOBAL_EXPEDITED)
    if ok:
        ok = fn(SYS_MEMBARRIER, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0, None, None, 0) == 0
    _barrier_pid, _barrier_ok = pid, ok
    return ok


def process_barrier() -> bool:
    """Make every registered process pass a full memory barrier; ``False`` if unsupported."""
    if _barrier_pid != os.getpid() and not membarrier_register():
        return False
    if not _barrier_ok:
        return False
    fn = _syscall or _load()
    return fn(SYS_MEMBARRIER, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0, None, None, 0) == 0
