"""Credential verification per second and per core, beside the raw signature check it contains.

For each algorithm: a native health code issued by our issuer, verified in full
(Base45, zlib, COSE, signature, claims, profile) by one thread; and `cryptography`
verifying the same signature over the same bytes — the ceiling the rest eats into.
Target: >= 5,000 ES256 codes/s per core.

    .venv/bin/python -m bench.verify_codes [--seconds 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from bench.common import record
from edge.credentials.hcert import unwrap
from tests.credentials import T0, green_code, signer, trusted, verifier

CASES = [("ES256", 2048), ("PS256", 2048), ("PS256", 3072), ("EdDSA", 2048)]


def per_second(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of CPU time on this thread (not wall time: the machine is shared)."""
    fn()
    count, start = 0, time.thread_time()
    while (elapsed := time.thread_time() - start) < seconds:
        for _ in range(50):
            fn()
        count += 50
    return count / elapsed


def raw_check(algorithm: str, code: str, key: object) -> Callable[[], None]:
    sign1 = unwrap(code)
    message, signature = sign1.to_be_signed(), sign1.signature
    if isinstance(key, ec.EllipticCurvePublicKey):
        der = encode_dss_signature(int.from_bytes(signature[:32]), int.from_bytes(signature[32:]))
        return lambda: key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPublicKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return lambda: key.verify(signature, message, pss, hashes.SHA256())
    assert isinstance(key, ed25519.Ed25519PublicKey), algorithm
    return lambda: key.verify(signature, message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per measurement")
    args = parser.parse_args()
    at = T0 + timedelta(hours=1)
    rows = []
    for algorithm, bits in CASES:
        site = signer(algorithm, bits)  # type: ignore[arg-type]
        code = green_code(site)
        check = verifier(trusted(site))
        assert check.verify(code, at).ok
        full = per_second(lambda c=check, t=code: c.verify(t, at), args.seconds)
        raw = per_second(raw_check(algorithm, code, site.key.public_key()), args.seconds)
        name = f"{algorithm} (RSA {bits})" if algorithm == "PS256" else algorithm
        rows.append({
            "algorithm": name, "code chars": len(code), "verify/s per core": full,
            "raw signature/s": raw, "share of raw": f"{full / raw:.0%}", "µs per code": 1e6 / full,
        })  # fmt: skip
    record("verify_codes", rows, seconds=args.seconds, clock="thread CPU time")


if __name__ == "__main__":
    main()
