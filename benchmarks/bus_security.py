"""The cost of bus security: the bus benchmark with frame MACs and with AEAD encryption.

Usage::

    python -m benchmarks.bus_security [--quick] [--json PATH]

Runs ``benchmarks.bus``'s harness (same worker processes, same phases, same core
pinning; see that module) for three transports in one run:

- ``swarm``       -- the plain shared-memory bus;
- ``swarm+mac``   -- every payload sealed with :class:`engine.security.FrameSealer`
  (``security.authenticate``: keyed BLAKE2b, 16-byte tag over header and payload)
  and verified by the receiver;
- ``swarm+aead``  -- every payload encrypted (``security.encrypt``: AES-256-GCM with
  AES instructions, else ChaCha20-Poly1305; 12-byte nonce + 16-byte tag) and
  decrypted by the receiver.

It prints the usual table, then the overhead of each against ``swarm``: added round
trip (p50, microseconds, and ratio) and throughput ratio at 64 B and 4 KiB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from benchmarks import bus as bus_bench
from benchmarks._bus_transports import (
    TRANSPORTS,
    Endpoint,
    SwarmEndpoint,
    SwarmTransport,
)
from benchmarks._bus_worker import run_role

__all__ = ["main", "run"]

KIND_DATA, SENDER, RECIPIENT, LANE_NORMAL = 1, 1, 0, 2


class SealedEndpoint(Endpoint):
    """A swarm endpoint that seals what it sends and opens what it receives."""

    def __init__(self, spec: dict[str, Any], role: str) -> None:
        from engine.security import FrameSealer

        self.inner = SwarmEndpoint(spec, role)
        self.sealer = FrameSealer(spec["secret"], encrypt=spec["encrypt"])
        self.hdr = (KIND_DATA, SENDER, RECIPIENT, LANE_NORMAL, 0, 0)

    def _open(self, sealed: bytes) -> bytes:
        plain = self.sealer.open(sealed, *self.hdr)
        if plain is None:
            raise RuntimeError("a frame failed authentication in the benchmark")
        return plain

    def send(self, msg: bytes) -> None:
        self.inner.send(self.sealer.seal(msg, *self.hdr))

    def recv(self) -> bytes:
        return self._open(self.inner.recv())

    def send_many(self, msgs: list[bytes]) -> None:
        seal, hdr = self.sealer.seal, self.hdr
        self.inner.send_many([seal(m, *hdr) for m in msgs])

    def recv_many(self) -> list[bytes]:
        return [self._open(m) for m in self.inner.recv_many()]

    def close(self) -> None:
        self.inner.close()


class _SealedTransport(SwarmTransport):
    encrypt = False

    def setup(self, ctx: Any) -> Any:
        from engine.security import new_secret

        spec = dict(super().setup(ctx))
        spec["secret"] = new_secret()
        spec["encrypt"] = self.encrypt
        return spec

    @staticmethod
    def endpoint(spec: Any, role: str) -> Endpoint:
        return SealedEndpoint(spec, role)


class MacTransport(_SealedTransport):
    name = "swarm+mac"


class AeadTransport(_SealedTransport):
    name = "swarm+aead"
    encrypt = True


# Registered at import: the spawned workers import this module (to unpickle _role), so the
# names resolve there too.
TRANSPORTS.setdefault(MacTransport.name, MacTransport)
TRANSPORTS.setdefault(AeadTransport.name, AeadTransport)
NAMES = ["swarm", MacTransport.name, AeadTransport.name]


def _role(*args: Any) -> None:
    """Worker entry: ``benchmarks._bus_worker.run_role`` after this module registered its transports."""
    run_role(*args)


@contextlib.contextmanager
def _workers_import_this_module() -> Iterator[None]:
    saved = bus_bench.run_role
    bus_bench.run_role = _role  # type: ignore[assignment]
    try:
        yield
    finally:
        bus_bench.run_role = saved  # type: ignore[assignment]


def run(*, quick: bool = False, echo: bool = True) -> dict[str, Any]:
    """The three transports through the bus benchmark's harness, in one run."""
    with _workers_import_this_module():
        return bus_bench.run(NAMES, quick=quick, echo=echo)


def overhead(results: dict[str, Any]) -> dict[str, Any]:
    """Per secured transport: added rt p50 (us), rt ratio, and throughput ratios vs plain swarm."""
    base = results["swarm"]
    out = {}
    for name in NAMES[1:]:
        r = results[name]
        out[name] = {
            "rt_p50_added_us": round(r["rt_p50_us"] - base["rt_p50_us"], 2),
            "rt_p50_ratio": round(r["rt_p50_us"] / base["rt_p50_us"], 3),
            "msgs_per_s_64_ratio": round(r["msgs_per_s_64"] / max(base["msgs_per_s_64"], 1), 3),
            "msgs_per_s_4k_ratio": round(r["msgs_per_s_4k"] / max(base["msgs_per_s_4k"], 1), 3),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bus_security", description=__doc__.split("\n")[0])
    ap.add_argument("--json", metavar="PATH", help="write the results and overheads as JSON")
    ap.add_argument("--quick", action="store_true", help="a fast smoke run (smaller counts)")
    args = ap.parse_args(argv)
    results = run(quick=args.quick)
    print(bus_bench.format_table(results))
    ov = overhead(results)
    print("\nsecurity overhead vs plain swarm:")
    for name, o in ov.items():
        print(f"  {name:12s} rt p50 +{o['rt_p50_added_us']:.1f} us (x{o['rt_p50_ratio']:.2f})   "
              f"64B throughput x{o['msgs_per_s_64_ratio']:.2f}   4KiB throughput x{o['msgs_per_s_4k_ratio']:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"results": {n: {k: r[k] for k in bus_bench.KEYS} for n, r in results.items()},
                       "overhead": ov}, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
