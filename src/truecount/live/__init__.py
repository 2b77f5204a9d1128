"""The neutral meter, live (docs/meter.md): signed webhook intake, a durable journal, and a
transparency log both the buyer and the vendor can check.

Modules, one concept each: ``log`` the append-only Merkle log and its signed tree heads,
``journal`` the fsync'd record of accepted events, ``events`` canonical events from JSON,
``vendors`` webhook payloads through the file adapters, ``signatures`` who sent a request,
``config`` secrets and tokens, ``meter`` the three kept in step, ``app`` the HTTP face.
"""
