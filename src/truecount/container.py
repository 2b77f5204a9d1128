"""How an input file is stored on disk: its compression and its text encoding.

Exports reach the buyer the way the tools that wrote them chose: Windows PowerShell 5.1 saves
``>`` redirections as UTF-16 with a byte-order mark, Excel and many ETL tools prefix UTF-8 with
a BOM, and object-store and ETL destinations gzip every file. DuckDB's readers expect plain
UTF-8, and a BOM in front of a JSON document makes it invalid JSON. So every reader in the
package asks :func:`readable` for the path to hand DuckDB:

- plain UTF-8 without a BOM (the common case, and the only one at scale) is read in place, at
  no cost: only the first bytes are looked at;
- gzip, a UTF-8 BOM, or UTF-16 LE/BE with a BOM are decoded once, streaming in chunks, into a
  UTF-8 copy in a private temporary folder that lives as long as the process;
- anything else (UTF-32, UTF-16 without a BOM, Windows-1252 / Latin-1 text, a binary file under
  a text name) is refused with one line naming the encoding found and how to re-save the file.

The file as given stays the unit of record: its name is what events' ``source`` and the
quarantine point at, and its SHA-256 (of the bytes on disk, compressed or not) is what the
ingest log and evidence packs keep. Only the bytes DuckDB reads are the decoded copy.
"""

from __future__ import annotations

import atexit
import codecs
import gzip
import shutil
import tempfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from truecount.errors import InputError, Location, Problem, TruecountError

#: Compression suffixes a file name may carry after its format suffix (``tickets.json.gz``).
COMPRESSED_SUFFIXES: Final[frozenset[str]] = frozenset({".gz", ".gzip"})

_GZIP_MAGIC: Final[bytes] = b"\x1f\x8b"
_HEAD: Final[int] = 64 * 1024
_CHUNK: Final[int] = 1 << 20

_UTF8_BOM: Final[bytes] = codecs.BOM_UTF8
_BOMS: Final[tuple[tuple[bytes, str | None, str], ...]] = (
    # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, None, "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, None, "UTF-32 BE"),
    (_UTF8_BOM, "utf-8-sig", "UTF-8 with a byte-order mark"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 BE"),
)

_RESAVE: Final[str] = (
    "re-save it as UTF-8 (for example `iconv -f {enc} -t UTF-8 in > out`, or in PowerShell "
    "`Get-Content in | Set-Content -Encoding utf8 out`); UTF-8, UTF-8 with a BOM, UTF-16 with "
    "a BOM and gzip of any of them are read as they are"
)


@dataclass(frozen=True)
class Container:
    """What :func:`inspect` saw: ``compression`` (``gzip`` or None) and the text encoding."""

    compression: str | None
    encoding: str  # a label for people: "UTF-8", "UTF-16 LE", ...
    codec: str  # the Python codec that decodes it ("utf-8", "utf-8-sig", "utf-16")

    @property
    def plain(self) -> bool:
        """True when DuckDB can read the file in place."""
        return self.compression is None and self.codec == "utf-8"

    def describe(self) -> str:
        return f"{self.encoding}, gzip" if self.compression else self.encoding


def format_suffix(path: Path) -> str:
    """The suffix that names the file's format, past a compression suffix (``.json.gz``)."""
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def inspect(path: Path, *, binary_ok: bool = False) -> Container:
    """The file's compression and encoding, from its first bytes only.

    Raises :class:`InputError` (one line, naming what was found) for an encoding that is
    not read. ``binary_ok`` skips the text checks (Parquet).
    """
    with path.open("rb") as raw:
        head = raw.read(_HEAD)
    compression = None
    if head.startswith(_GZIP_MAGIC):
        compression = "gzip"
        head = _gunzip_head(path, head)
    if binary_ok:
        return Container(compression, "binary", "binary")
    for bom, codec, label in _BOMS:
        if head.startswith(bom):
            if codec is None:
                raise _refuse(path, f"the file is {label} text", label.replace(" ", ""))
            return Container(compression, label, codec)
    zeros = _nul_pattern(head)
    if zeros == _BINARY:
        at = head.index(b"\x00")
        line = 1 + head[:at].count(b"\n")
        raise InputError(
            Problem(
                f"cannot read: a NUL byte at line {line} (offset {at}); text files hold none, "
                "so this is binary data or a damaged file",
                Location(file=str(path), line=line),
                hint="export it again as CSV, JSON Lines or Parquet; a spreadsheet (.xlsx) "
                "must be saved as CSV (UTF-8) first; if one cell holds the byte, remove it "
                "(for example `tr -d '\\000' < in > out`)",
            )
        )
    if zeros is not None:
        raise _refuse(
            path,
            f"the file looks like {zeros} text without a byte-order mark",
            zeros.replace(" ", ""),
        )
    _check_utf8_head(path, head)
    return Container(compression, "UTF-8", "utf-8")


def readable(path: Path, *, binary_ok: bool = False) -> Path:
    """The path DuckDB should read for ``path``: itself, or its decoded UTF-8 copy.

    Copies are made once per file and process (keyed by path, size and modification time)
    and removed when the process exits.
    """
    found = inspect(path, binary_ok=binary_ok)
    if found.plain or (binary_ok and found.compression is None):
        return literal_path(path)
    return _decoded_copy(path, found)


#: Characters DuckDB's file readers take as a glob pattern in a path.
_GLOB: Final[frozenset[str]] = frozenset("*?[]{}")


def literal_path(path: Path) -> Path:
    """A path DuckDB reads as exactly this one file.

    DuckDB's readers expand ``*``, ``?`` and ``[...]`` in every path they are given, so a file
    named ``e*.csv`` would silently be read together with ``events.csv``, and ``x[1].csv``
    would read ``x1.csv`` instead. A path holding such a character is handed over as a
    link with a plain name in the process's private folder, pointing at the very same file
    (the bytes hashed and the bytes read are one file)."""
    if not _GLOB.intersection(str(path)):
        return path
    return _COPIES.link(path)


def read_text(path: Path) -> str:
    """The whole file as text, whatever container :func:`readable` accepts (small files:
    definitions, mappings, terms, JSON documents on the error path)."""
    return readable(path).read_text(encoding="utf-8")


def diagnose_utf8(path: Path) -> Problem | None:
    """Where a file that DuckDB refused as "not UTF-8" breaks, as a problem naming the line
    and the encoding it most likely is; None when it is valid UTF-8 after all. Error path
    only: it reads the whole (decoded) file."""
    target = readable(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    with target.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                before = chunk[: exc.start]
                line += before.count(b"\n")
                bad = chunk[exc.start : exc.start + 1]
                return _not_utf8(path, line, offset + exc.start, bad, chunk)
            line += chunk.count(b"\n")
            offset += len(chunk)
    return None


# --------------------------------------------------------------------------- internals


def _gunzip_head(path: Path, head: bytes) -> bytes:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, _HEAD)
    except zlib.error as exc:
        raise InputError(
            Problem(
                f"not a readable gzip file: {exc}",
                Location(file=str(path)),
                hint="a truncated download? fetch it again, or decompress it with gunzip",
            )
        ) from exc


#: What :func:`_nul_pattern` calls NUL bytes in no UTF-16 pattern.
_BINARY: Final[str] = "binary"


def _nul_pattern(head: bytes) -> str | None:
    """UTF-16 without a BOM shows as NUL bytes on every other position in mostly-ASCII text."""
    sample = head[:4096]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    half = len(sample) // 2
    if odd > 0.3 * half and even < 0.05 * half:
        return "UTF-16 LE"
    if even > 0.3 * half and odd < 0.05 * half:
        return "UTF-16 BE"
    return _BINARY


def _check_utf8_head(path: Path, head: bytes) -> None:
    try:
        # a multi-byte character may be cut at the end of the head: decode incrementally
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        before = head[: exc.start]
        problem = _not_utf8(
            path, 1 + before.count(b"\n"), exc.start, head[exc.start : exc.start + 1], head
        )
        raise InputError(problem) from exc


def _not_utf8(path: Path, line: int, offset: int, bad: bytes, context: bytes) -> Problem:
    guess = "Windows-1252 or Latin-1"
    enc = "WINDOWS-1252"
    try:
        context.decode("cp1252")
    except UnicodeDecodeError:
        guess, enc = "an 8-bit encoding other than UTF-8", "<its encoding>"
    return Problem(
        f"not UTF-8 text: byte 0x{bad.hex().upper()} at line {line} (offset {offset}); "
        f"it looks like {guess}",
        Location(file=str(path), line=line),
        hint=_RESAVE.format(enc=enc),
    )


def _refuse(path: Path, what: str, enc: str) -> InputError:
    return InputError(
        Problem(f"cannot read: {what}", Location(file=str(path)), hint=_RESAVE.format(enc=enc))
    )


class _Copies:
    """Decoded copies made by this process, removed at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._made: dict[tuple[str, int, int], Path] = {}
        self._links: dict[str, Path] = {}

    def _private(self) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="truecount-decoded-"))
            atexit.register(shutil.rmtree, self._folder, True)
        return self._folder

    def link(self, path: Path) -> Path:
        target = path.resolve()
        with self._lock:
            made = self._links.get(str(target))
            if made is not None and made.is_symlink():
                return made
            alias = self._private() / f"link{len(self._links)}{format_suffix(path)}"
            alias.symlink_to(target)
            self._links[str(target)] = alias
            return alias

    def get(self, path: Path, found: Container) -> Path:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            made = self._made.get(key)
            if made is not None and made.exists():
                return made
            target = self._private() / f"{len(self._made)}{format_suffix(path)}"
            _decode_into(path, found, target)
            self._made[key] = target
            return target


_COPIES: Final[_Copies] = _Copies()


def _decoded_copy(path: Path, found: Container) -> Path:
    return _COPIES.get(path, found)


def _decode_into(path: Path, found: Container, target: Path) -> None:
    """Stream ``path`` through gunzip and its codec into UTF-8 at ``target``."""
    opener = gzip.open if found.compression == "gzip" else open
    try:
        with opener(path, "rb") as src, target.open("wb") as out:
            if found.codec == "binary":
                shutil.copyfileobj(src, out, _CHUNK)
                return
            decoder = codecs.getincrementaldecoder(found.codec)(errors="strict")
            line = 1
            while chunk := src.read(_CHUNK):
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    raise InputError(
                        Problem(
                            f"not valid {found.encoding}: {exc.reason} near line {line}",
                            Location(file=str(path), line=line),
                            hint="the file is damaged or mixes encodings; re-export it",
                        )
                    ) from exc
                line += text.count("\n")
                out.write(text.encode("utf-8"))
            out.write(decoder.decode(b"", final=True).encode("utf-8"))
    except (OSError, EOFError, zlib.error) as exc:
        target.unlink(missing_ok=True)
        raise InputError(
            Problem(
                f"cannot decompress the gzip file: {exc}",
                Location(file=str(path)),
                hint="a truncated download? fetch it again",
            )
        ) from exc
    except TruecountError:
        target.unlink(missing_ok=True)
        raise
