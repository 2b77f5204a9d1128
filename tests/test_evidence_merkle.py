"""Building blocks of evidence packs, against published vectors and independent code.

The Merkle tree is held against a recursive implementation of RFC 6962 §2.1 written here with
hashlib (MTH and PATH exactly as the RFC defines them), and both against the Certificate
Transparency test vectors; DSSE's encoding against the example of its specification; Ed25519
against RFC 8032's first test vector.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from truecount.errors import TruecountError
from truecount.evidence import merkle, text_trees
from truecount.evidence.records import (
    entity_leaf_data,
    event_leaf_data,
    event_leaf_sql,
    row_leaf_data,
)
from truecount.evidence.sign import (
    check_envelope,
    generate_key,
    load_private_key,
    load_public_key,
    pae,
    sign_envelope,
)


# ----------------------------------------------------------------- RFC 6962, by the letter
def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(d: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH over leaf *data* (recursive, split at the largest power of two < n)."""
    n = len(d)
    if n == 0:
        return H(b"")
    if n == 1:
        return H(b"\x00" + d[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return H(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n])."""
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


#: Leaves and roots of the Certificate Transparency Merkle tree tests (sizes 1 to 8).
CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f"]  # fmt: skip
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def net(t: str | None) -> bytes:
    """A field's text as a length-prefixed net string, ``~`` when it is missing."""
    return b"~" if t is None else str(len(t.encode())).encode() + b":" + t.encode()


def _event_data(r: tuple[Any, ...]) -> bytes:
    """One event's data as docs/evidence.md writes it out, by hand: each field's text (the
    time to the microsecond, the value to 17 significant digits) as a net string."""
    texts = [
        r[0], r[1], r[2].strftime("%Y-%m-%dT%H:%M:%S.%f"), r[3], r[4],
        None if r[5] is None else format(r[5], ".17g"), r[6],
        None if r[7] is None else str(r[7]),
    ]  # fmt: skip
    return b"".join(net(t) for t in texts)


def leaf_array(data: list[bytes]) -> merkle.Hashes:
    return merkle.as_hashes([H(b"\x00" + x) for x in data])


def test_empty_tree_is_the_hash_of_nothing() -> None:
    assert merkle.root(leaf_array([])).hex() == hashlib.sha256(b"").hexdigest()
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_certificate_transparency_vectors(size: int) -> None:
    data = [bytes.fromhex(x) for x in CT_LEAVES[:size]]
    assert mth(data).hex() == CT_ROOTS[size - 1]  # the reference reproduces the vectors
    assert merkle.root(leaf_array(data)).hex() == CT_ROOTS[size - 1]


@pytest.mark.parametrize("size", [*range(1, 40), 64, 65, 100, 127, 128, 129])
def test_roots_and_every_audit_path_match_the_rfc(size: int) -> None:
    data = [f"leaf {i}".encode() for i in range(size)]
    leaves = leaf_array(data)
    expected = mth(data)
    root, paths = merkle.audit_paths(leaves, range(size))
    assert root == expected == merkle.root(leaves)
    for m in range(size):
        assert paths[m] == path(m, data), m
        assert merkle.verify_inclusion(leaves[m].tobytes(), m, size, paths[m], expected)


def test_a_wrong_leaf_index_path_or_size_does_not_verify() -> None:
    data = [bytes([i]) for i in range(13)]
    leaves = leaf_array(data)
    root, paths = merkle.audit_paths(leaves, [5])
    leaf = leaves[5].tobytes()
    assert merkle.verify_inclusion(leaf, 5, 13, paths[5], root)
    assert not merkle.verify_inclusion(leaves[6].tobytes(), 5, 13, paths[5], root)
    assert not merkle.verify_inclusion(leaf, 4, 13, paths[5], root)
    # the size that shapes the path is part of the claim (a size of 14 shapes it alike: the
    # statement, not the path, authenticates the size)
    assert not merkle.verify_inclusion(leaf, 5, 6, paths[5], root)
    assert not merkle.verify_inclusion(leaf, 5, 33, paths[5], root)
    assert not merkle.verify_inclusion(leaf, 5, 13, paths[5][:-1], root)
    assert not merkle.verify_inclusion(leaf, 13, 13, paths[5], root)
    bad = [paths[5][0][:-1] + bytes([paths[5][0][-1] ^ 1]), *paths[5][1:]]
    assert not merkle.verify_inclusion(leaf, 5, 13, bad, root)


def test_a_leaf_cannot_pose_as_an_interior_node() -> None:
    """Domain separation: the two leaf hashes under a node, offered as one leaf, fail."""
    data = [b"a", b"b"]
    leaves = leaf_array(data)
    node_data = leaves[0].tobytes() + leaves[1].tobytes()
    assert merkle.leaf_hash(node_data) != merkle.root(leaves)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=60), st.data())
def test_property_paths_verify(data: list[bytes], pick: st.DataObject) -> None:
    m = pick.draw(st.integers(0, len(data) - 1))
    leaves = leaf_array(data)
    root, paths = merkle.audit_paths(leaves, [m])
    assert root == mth(data)
    assert merkle.verify_inclusion(leaves[m].tobytes(), m, len(data), paths[m], root)


# ----------------------------------------------------------------- leaf encodings
def test_event_leaf_in_sql_matches_the_documented_bytes() -> None:
    """DuckDB's leaf hash equals SHA-256(0x00 || netstrings) of the texts written by hand."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE e AS SELECT * FROM (VALUES "
        "('ev-1', 'T-1', TIMESTAMP '2026-01-02 03:04:05.000007', 'rated', 'customer', 0.1::DOUBLE, "
        '\'{"k":"é"}\'::JSON, 3::BIGINT), '
        "('ev-2', 'T-1', TIMESTAMP '2026-01-02 03:04:05', 'closed', NULL, NULL, NULL, NULL), "
        "('ëv:3', '', TIMESTAMP '1999-12-31 23:59:59.5', 'x', 'ai', -0.0::DOUBLE, '[]'::JSON, -7))"
        " AS t(event_id, entity_id, ts, type, actor, value, attrs, seq)"
    )
    got = [
        r[0]
        for r in con.execute(
            f"SELECT {event_leaf_sql('e').sql('duckdb')} FROM e ORDER BY event_id"
        ).fetchall()
    ]

    rows = [
        ["ev-1", "T-1", "2026-01-02T03:04:05.000007", "rated", "customer", format(0.1, ".17g"),
         '{"k":"é"}', "3"],
        ["ev-2", "T-1", "2026-01-02T03:04:05.000000", "closed", None, None, None, None],
        ["ëv:3", "", "1999-12-31T23:59:59.500000", "x", "ai", "-0", "[]", "-7"],
    ]  # fmt: skip
    expected = [H(b"\x00" + b"".join(net(f) for f in r)) for r in rows]
    assert got == expected
    assert [merkle.leaf_hash(event_leaf_data(r)) for r in rows] == expected
    # the example in docs/evidence.md
    assert event_leaf_data(rows[1]) == b"4:ev-23:T-126:2026-01-02T03:04:05.0000006:closed~~~~"
    assert row_leaf_data(["a", "", "é"]) == b"1:a0:2:\xc3\xa9"
    assert row_leaf_data([None]) == b"0:"


# ----------------------------------------------------------------- DSSE and Ed25519
RFC8032_SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def test_pae_is_the_dsse_encoding() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("t", b"") == b"DSSEv1 1 t 0 "


def test_envelope_signs_the_pae_of_the_payload() -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_SECRET))
    # RFC 8032 §7.1 test 1: the library is the one the vector describes
    assert key.sign(b"").hex().startswith("e5564300c360ac729086e2cc806e828a")
    payload = b'{"_type":"x"}'
    env = sign_envelope(payload, key)
    assert env["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(env["payload"]) == payload
    message = b"DSSEv1 28 application/vnd.in-toto+json 13 " + payload
    sig = base64.b64decode(env["signatures"][0]["sig"])
    key.public_key().verify(sig, message)  # raises if it signed anything else
    assert (
        env["signatures"][0]["keyid"] == hashlib.sha256(bytes.fromhex(RFC8032_PUBLIC)).hexdigest()
    )
    assert check_envelope(env, key.public_key()).ok
    other = Ed25519PrivateKey.generate().public_key()
    result = check_envelope(env, other)
    assert not result.ok and "not signed by the given public key" in result.cause
    env["payload"] = base64.b64encode(b'{"_type":"y"}').decode()
    result = check_envelope(env, key.public_key())
    assert not result.ok and "altered" in result.cause


def test_keygen_writes_an_owner_only_key_and_never_overwrites(tmp_path: Path) -> None:
    keys = generate_key(tmp_path / "signer.key")
    mode = stat.S_IMODE(os.stat(keys.private).st_mode)
    assert mode == 0o600
    assert keys.public == tmp_path / "signer.key.pub"
    assert load_public_key(keys.public) == load_public_key(keys.base64)
    (tmp_path / "b64.txt").write_text(keys.base64 + "\n")
    assert load_public_key(tmp_path / "b64.txt") == load_public_key(keys.public)
    assert load_private_key(keys.private).public_key() == load_public_key(keys.public)
    with pytest.raises(TruecountError, match="exists"):
        generate_key(tmp_path / "signer.key")
    os.chmod(keys.private, 0o644)
    with pytest.raises(TruecountError, match="readable by others"):
        load_private_key(keys.private)
    with pytest.raises(TruecountError, match="not a public key"):
        load_public_key("not-a-key")


def test_hashes_array_round_trip() -> None:
    arr = np.arange(64, dtype=np.uint8).reshape(2, 32)
    assert merkle.as_hashes(arr.tobytes()).tolist() == arr.tolist()
    with pytest.raises(ValueError):
        merkle.as_hashes(b"x" * 33)


# ----------------------------------------------------------------- streamed roots
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=8), max_size=80),
    st.sampled_from([1, 2, 4, 8, 16]),
    st.lists(st.integers(1, 13), min_size=1, max_size=10),
)
def test_streamed_root_matches_the_rfc(data: list[bytes], block: int, cuts: list[int]) -> None:
    """Whatever the block size and however the leaves are batched, the root is RFC 6962's."""
    builder = merkle.RootBuilder(block)
    leaves = leaf_array(data) if data else np.zeros((0, 32), dtype=np.uint8)
    at, i = 0, 0
    while at < len(data):
        step = cuts[i % len(cuts)]
        builder.add(leaves[at : at + step])
        at += step
        i += 1
    assert builder.size == len(data)
    assert builder.root() == mth(data)
    assert merkle.root(leaves) == mth(data)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_blocks_reduced_by_helper_processes_give_the_rfc_root(workers: int) -> None:
    """Full blocks handed to helper processes (more blocks than helpers, so each takes
    several, and a partial block left at the end) fold to the recursive RFC root."""
    data = [i.to_bytes(4, "big") * (i % 5) for i in range(16 * 11 + 5)]
    leaves = leaf_array(data)
    with merkle.BlockPool(workers) as pool:
        builder = merkle.RootBuilder(16, pool=pool)
        for at in range(0, len(data), 7):
            builder.add(leaves[at : at + 7])
        assert builder.root() == mth(data)
        builder.add(leaves[:16])  # the builder goes on after a root, and the pool with it
        assert builder.root() == mth(data + data[:16])
    with merkle.BlockPool(2) as pool:  # a tree smaller than a block starts no helper
        small = merkle.RootBuilder(16, pool=pool)
        small.add(leaves[:5])
        assert small.root() == mth(data[:5])
        assert pool._procs == []


def test_a_block_size_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        merkle.RootBuilder(6)


def test_event_tree_streamed_from_duckdb_matches_plain_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More leaves than one streaming block: the engine's root over events in leaf order
    equals hashlib over netstrings built here from the same rows, sorted here."""
    import datetime as dt

    monkeypatch.setattr(merkle, "STREAM_BLOCK", 1 << 12)  # many full blocks and a partial one

    import pyarrow as pa

    from truecount.evidence import run as ev_run

    n = 60_001
    base = dt.datetime(2026, 1, 1)
    rows = []
    for i in range(n):
        entity = f"T-{(i * 7919) % 40_000}"
        ts = base + dt.timedelta(seconds=(i * 104729) % 500_000, microseconds=i % 997)
        value = None if i % 5 else (i % 11) / 3
        actor = None if i % 13 == 0 else ("ai" if i % 2 else "agent")
        attrs = None if i % 3 else f'{{"n":{i}}}'
        seq = None if i % 17 == 0 else i % 4
        rows.append(
            (f"ev-{i}", entity, ts, "closed" if i % 4 else "rated", actor, value, attrs, seq)
        )
    cols = list(zip(*rows, strict=True))
    table = pa.table(
        {
            "event_id": pa.array(cols[0], pa.string()),
            "entity_id": pa.array(cols[1], pa.string()),
            "ts": pa.array(cols[2], pa.timestamp("us")),
            "type": pa.array(cols[3], pa.string()),
            "actor": pa.array(cols[4], pa.string()),
            "value": pa.array(cols[5], pa.float64()),
            "attrs": pa.array(cols[6], pa.string()),
            "seq": pa.array(cols[7], pa.int64()),
        }
    )
    as_of = base + dt.timedelta(seconds=450_000)
    covered = {f"T-{k}" for k in range(0, 40_000, 3)}
    con = duckdb.connect()
    con.register("raw_events", table)
    con.execute(f"CREATE TABLE {ev_run.EVENTS_TABLE} AS SELECT * FROM raw_events")
    con.execute(f"CREATE TABLE {ev_run._COVERED} (entity_id VARCHAR)")
    con.executemany(f"INSERT INTO {ev_run._COVERED} VALUES (?)", [[e] for e in sorted(covered)])
    tree = text_trees.stream_root(con, text_trees._event_rows(as_of))

    keyed = []
    for r in rows:
        if r[1] not in covered or r[2] > as_of:
            continue
        h = H(b"\x00" + _event_data(r))
        seq = r[7] if r[7] is not None else 2**63
        keyed.append(((r[1].encode(), r[2], seq, r[0].encode(), h), h))
    keyed.sort(key=lambda x: x[0])
    hashes = [h for _, h in keyed]

    def mth_hashes(hs: list[bytes]) -> bytes:
        if len(hs) == 1:
            return hs[0]
        k = 1
        while k * 2 < len(hs):
            k *= 2
        return H(b"\x01" + mth_hashes(hs[:k]) + mth_hashes(hs[k:]))

    assert tree.size == len(hashes) > merkle.STREAM_BLOCK
    assert tree.root == mth_hashes(hashes).hex()


def adversarial_events(nan: bool = False) -> tuple[list[tuple[Any, ...]], Any, Any, set[str]]:
    """Events whose ids and texts mix lengths, prefixes and non-ASCII characters (where byte
    order differs from a naive or locale order), nulls in every nullable field, -0.0 beside
    0.0, and one entity with more events than several batches hold; loaded into a DuckDB
    connection with a covered-entities table. Returns the rows, the connection, the as-of
    time and the covered ids."""
    import datetime as dt
    import random

    import pyarrow as pa

    from truecount.evidence import run as ev_run

    rng = random.Random(5)
    alphabet = ["a", "z", "Z", "é", "ü", "中", "-", "1", "10", ":", "~", "😀"]
    ids = sorted({"".join(rng.choices(alphabet, k=rng.randint(0, 4))) for _ in range(900)})
    base = dt.datetime(2026, 1, 1)
    values = [0.1, -0.0, 0.0, 1e300, 4.0, *([float("nan"), -float("nan")] if nan else [])]
    rows = []
    for i in range(5_000):
        entity = ids[len(ids) // 2] if i % 25 == 0 else rng.choice(ids)
        ts = base + dt.timedelta(seconds=rng.randint(0, 99), microseconds=rng.choice([0, 7]))
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 3)))
        rows.append(
            (
                None if i % 97 == 0 else f"ev{text}{i % 50}",
                entity,
                ts,
                text,
                None if i % 3 else text,
                None if i % 5 else rng.choice(values),
                None if i % 7 else f'{{"t":"{text}"}}',
                None if i % 11 == 0 else rng.randint(-2, 2),
            )
        )
    cols = list(zip(*rows, strict=True))
    names = ["event_id", "entity_id", "ts", "type", "actor", "value", "attrs", "seq"]
    types = [pa.string(), pa.string(), pa.timestamp("us"), pa.string(), pa.string(),
             pa.float64(), pa.string(), pa.int64()]  # fmt: skip
    table = pa.table({n: pa.array(c, t) for n, c, t in zip(names, cols, types, strict=True)})
    as_of = base + dt.timedelta(seconds=90)
    covered = set(ids[::2])
    con = duckdb.connect()
    con.register("raw_events", table)
    con.execute(f"CREATE TABLE {ev_run.EVENTS_TABLE} AS SELECT * FROM raw_events")
    con.execute(f"CREATE TABLE {ev_run._COVERED} (entity_id VARCHAR)")
    con.executemany(f"INSERT INTO {ev_run._COVERED} VALUES (?)", [[e] for e in sorted(covered)])
    return rows, con, as_of, covered


def mth_list(hs: list[bytes]) -> bytes:
    """RFC 6962's MTH, recursively, as the RFC writes it."""
    if not hs:
        return hashlib.sha256(b"").digest()
    if len(hs) == 1:
        return hs[0]
    k = 1
    while k * 2 < len(hs):
        k *= 2
    return H(b"\x01" + mth_list(hs[:k]) + mth_list(hs[k:]))


@pytest.mark.parametrize("batch", [1, 3, 64, 1 << 17])
def test_entity_tree_from_duckdb_matches_plain_python(
    monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """Pack format 3's event tree (a leaf per entity) against docs/evidence.md re-implemented
    here: each event's netstrings, an entity's events sorted as bytes and joined, the leaves
    sorted by entity id bytes; more leaves than one block. The events are read from DuckDB in
    batches of ``batch`` rows, so entities are cut across batches."""
    from truecount.evidence import run as ev_run
    from truecount.evidence.records import ENTITY_LEAF_FORMAT

    monkeypatch.setattr(merkle, "STREAM_BLOCK", 1 << 6)
    monkeypatch.setattr(text_trees, "LEAF_BATCH_EVENTS", batch)
    rows, con, as_of, covered = adversarial_events()
    tree, entities, _, _ = ev_run._event_tree(con, as_of, None, leaf_format=ENTITY_LEAF_FORMAT)

    per_entity: dict[bytes, list[bytes]] = {}
    for r in rows:
        if r[1] not in covered or r[2] > as_of:
            continue
        per_entity.setdefault(r[1].encode(), []).append(_event_data(r))
    leaves = [H(b"\x00" + b"".join(sorted(per_entity[k]))) for k in sorted(per_entity)]

    assert tree.size == entities == len(leaves) > merkle.STREAM_BLOCK
    assert tree.root == mth_list(leaves).hex()
    # the Python mirror the proof checker uses gives the same leaves, in any event order
    some = sorted(per_entity)[3].decode()
    mine = [
        [r[0], r[1], r[2].strftime("%Y-%m-%dT%H:%M:%S.%f"), r[3], r[4],
         None if r[5] is None else format(r[5], ".17g"), r[6], None if r[7] is None else str(r[7])]
        for r in reversed(rows)
        if r[1] == some and r[2] <= as_of
    ]  # fmt: skip
    assert merkle.leaf_hash(entity_leaf_data(mine)) == leaves[3]


def _record(r: tuple[Any, ...]) -> bytes:
    """Pack format 4's binary record of an event, written out from docs/evidence.md."""
    import datetime as dt
    import math
    import struct

    ts = (r[2] - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    flags = sum(1 << i for i, x in enumerate(r) if x is None)
    v = r[5]
    if v is None:
        bits = 0
    elif math.isnan(v):
        bits = 0x7FF8000000000000
    else:
        bits = struct.unpack(">Q", struct.pack(">d", v))[0]
    texts = [(r[k] or "").encode() for k in (0, 1, 3, 4, 6)]
    return struct.pack(">BqQq5I", flags, ts, bits, r[7] or 0, *map(len, texts)) + b"".join(texts)


def _block_key(r: tuple[Any, ...]) -> tuple[Any, ...]:
    """The documented event order: entity, ts, seq, event_id, type, actor, attrs, sign of the
    value, value; texts as UTF-8 bytes, nulls after every value, NaN after every number."""
    import math

    def k(x: Any) -> tuple[Any, ...]:
        if x is None:
            return (2,)
        if isinstance(x, float) and math.isnan(x):
            return (1,)
        return (0, x.encode() if isinstance(x, str) else x)

    v = r[5]
    sign = None if v is None else math.copysign(1.0, v) < 0
    return (r[1].encode(), r[2], k(r[7]), k(r[0]), k(r[3]), k(r[4]), k(r[6]), k(sign), k(v))


@pytest.mark.parametrize(("batch", "part"), [(1, 0), (3, 37), (64, 0), (64, 101), (1 << 17, 0)])
def test_block_tree_from_duckdb_matches_plain_python(
    monkeypatch: pytest.MonkeyPatch, batch: int, part: int
) -> None:
    """Pack format 4's event tree (a leaf per 64 entities, binary records) against the
    layout and order of docs/evidence.md written out here, with entities and blocks cut across
    batches of ``batch`` rows, NaNs of both signs, and -0.0 beside 0.0; and with the sort cut
    into parts of about ``part`` entities at boundaries drawn from a sample of 5 (0: one
    sort), so that parts end inside blocks and batches."""
    from truecount.evidence import blocks
    from truecount.evidence import run as ev_run

    monkeypatch.setattr(blocks, "BATCH_EVENTS", batch)
    rows, con, as_of, covered = adversarial_events(nan=True)
    if part:
        monkeypatch.setattr(blocks, "SORT_PART_ENTITIES", part)
        monkeypatch.setattr(blocks, "SORT_SAMPLE", 5)
        select = blocks.sorted_events_sql(exp.true(), ev_run.EVENTS_TABLE)
        assert len(blocks.sort_parts(con, select, ev_run._COVERED)) > 2
    tree, entities, count, _ = ev_run._event_tree(con, as_of, None)

    kept = sorted((r for r in rows if r[1] in covered and r[2] <= as_of), key=_block_key)
    per_entity: dict[bytes, list[bytes]] = {}
    for r in kept:
        per_entity.setdefault(r[1].encode(), []).append(_record(r))
    ordered = [b"".join(per_entity[k]) for k in sorted(per_entity)]
    leaves = [H(b"\x00" + b"".join(ordered[i : i + 64])) for i in range(0, len(ordered), 64)]
    assert entities == len(ordered) > 64 * 3 and count == len(kept)
    assert tree.size == len(leaves) and tree.root == mth_list(leaves).hex()
    # the proof checker's mirror, from the texts a proof shows
    first = [r for r in kept if r[1].encode() in sorted(per_entity)[:64]]
    texts = [
        [r[0], r[1], r[2].strftime("%Y-%m-%dT%H:%M:%S.%f"), r[3], r[4],
         None if r[5] is None else format(r[5], ".17g"), r[6], None if r[7] is None else str(r[7])]
        for r in first
    ]  # fmt: skip
    assert merkle.leaf_hash(blocks.block_data(texts)) == leaves[0]


def test_formula_cells_get_an_apostrophe_and_nothing_else_changes() -> None:
    """The CSV cell text of a VARCHAR in DuckDB against the rule written out here: a leading
    apostrophe exactly when the first character is one of = + - @ tab CR."""
    from truecount.evidence.records import cell_text

    values = ["=1+1", "+x", "-3", "@a", "\tt", "\rr", "a=b", "", "'", "é=", " =", "==", None]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    sql = f"SELECT {cell_text(exp.column('v'), 'VARCHAR').sql('duckdb')} FROM t ORDER BY i"
    got = [r[0] for r in con.execute(sql).fetchall()]
    want = [
        None if v is None else ("'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v)
        for v in values
    ]
    assert got == want


@settings(max_examples=60, deadline=None)
@given(
    scale=st.integers(min_value=0, max_value=8),
    digits=st.lists(st.integers(min_value=-(10**17) + 1, max_value=10**17 - 1), max_size=40),
    cents=st.lists(st.integers(min_value=-(10**12), max_value=10**12), max_size=40),
)
def test_decimal_cells_drop_trailing_zeros_but_keep_two_places(
    scale: int, digits: list[int], cents: list[int]
) -> None:
    """The CSV text of a DECIMAL(18, s) in DuckDB against Python's decimal module: the value
    at its storage scale without the trailing zeros past the second place (whole cents,
    which take a cheaper path in SQL, and any other value alike), NULL as NULL."""
    from decimal import Decimal

    from truecount.evidence.records import cell_text

    values: list[Decimal | None] = [Decimal(d).scaleb(-scale) for d in digits]
    if scale >= 2:
        room = 10 ** (20 - scale)  # cents that fit in 18 digits at this scale
        values += [Decimal(c % room if c >= 0 else -(-c % room)).scaleb(-2) for c in cents]
    values += [None, Decimal(10**18 - 1).scaleb(-scale), Decimal(1 - 10**18).scaleb(-scale)]
    dtype = f"DECIMAL(18,{scale})"
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t (i INTEGER, v {dtype})")
    con.executemany(
        f"INSERT INTO t VALUES (?, CAST(? AS {dtype}))",
        [(i, None if v is None else format(v, "f")) for i, v in enumerate(values)],
    )
    sql = f"SELECT {cell_text(exp.column('v'), dtype).sql('duckdb')} FROM t ORDER BY i"
    got = [r[0] for r in con.execute(sql).fetchall()]

    def text(v: Decimal | None) -> str | None:
        if v is None:
            return None
        shown = format(v.quantize(Decimal(1).scaleb(-scale)), "f")
        if "." not in shown:
            return shown
        whole, frac = shown.split(".")
        return f"{whole}.{frac[:2]}{frac[2:].rstrip('0')}"

    assert got == [text(v) for v in values]


def test_sort_parts_together_are_the_one_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parts of the event sort, read one after the other, give exactly the rows of the
    single sorted query in its order: ids of mixed lengths and non-ASCII characters (byte
    order), an empty id, and null ids, with boundaries drawn from a sample of 5."""
    from truecount.evidence import blocks
    from truecount.evidence import run as ev_run

    monkeypatch.setattr(blocks, "SORT_PART_ENTITIES", 7)
    monkeypatch.setattr(blocks, "SORT_SAMPLE", 5)
    rows, con, _as_of, _covered = adversarial_events()
    con.execute(
        f"INSERT INTO {ev_run.EVENTS_TABLE} (event_id, entity_id, ts) "
        "VALUES ('n1', NULL, TIMESTAMP '2026-01-01'), ('n2', NULL, TIMESTAMP '2026-01-02')"
    )
    con.execute(
        f"INSERT INTO {ev_run._COVERED} SELECT DISTINCT entity_id FROM {ev_run.EVENTS_TABLE}"
    )
    select = blocks.sorted_events_sql(exp.true(), ev_run.EVENTS_TABLE)
    parts = blocks.sort_parts(con, select, ev_run._COVERED)
    assert len(parts) > 2
    whole = con.execute(select.sql("duckdb")).fetchall()
    pieces = [r for part in parts for r in con.execute(part.sql("duckdb")).fetchall()]
    key = [(r[1], r[2]) for r in whole]
    assert len(pieces) == len(whole) == len(rows) + 2
    assert [(r[1], r[2]) for r in pieces] == key
    assert sorted(map(repr, pieces)) == sorted(map(repr, whole))
