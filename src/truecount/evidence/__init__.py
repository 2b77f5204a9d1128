"""Evidence packs: a signed, offline-verifiable record of one reconciliation (docs/evidence.md).

* :func:`generate_key` — an Ed25519 key pair for signing packs.
* :func:`build_pack` — reconcile and write a pack: digests of the raw files, an RFC 6962 Merkle
  root over the covered events, the definition, terms and SQL, the results with Merkle roots
  over their rows, all in an in-toto v1 Statement inside an Ed25519-signed DSSE envelope.
* :func:`verify_pack` — recompute everything from the pack and the data, and compare.
* :func:`make_proof` / :func:`verify_proof` — one entity's inclusion proof, checked on its own.
"""

from truecount.evidence.pack import Pack, build_pack
from truecount.evidence.prove import make_proof, verify_proof
from truecount.evidence.sign import generate_key, load_private_key, load_public_key
from truecount.evidence.verify import Check, Verification, verify_pack

__all__ = [
    "Check",
    "Pack",
    "Verification",
    "build_pack",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "make_proof",
    "verify_pack",
    "verify_proof",
]
