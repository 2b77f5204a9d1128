"""What changed between two snapshots' readable text, and which changes may change billing.

A line diff (difflib) says where the page changed; a word diff inside changed lines says what;
and a sentence list names the sentences that appear only before or only after. Sentences that
mention a number or a window word (hours, days, confirmed, assumed, ...) are flagged, because a
definition's window and its "assumed resolved" rule are where a change in wording becomes a
change in the bill.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final, Literal

Op = Literal[" ", "-", "+"]

#: Numbers as digits (24, 1.5, 9:00, 10%) and as words (twenty-four, seventy-two, half).
_NUMBER: Final = (
    r"\d+(?:[.,:]\d+)*\s?%?"
    r"|(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:-(?:one|two|three|four|five"
    r"|six|seven|eight|nine))?"
    r"|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen"
    r"|fifteen|sixteen|seventeen|eighteen|nineteen|hundred|thousand|half|twice|double"
)
#: Words that set or qualify a counting window or the outcome itself. Stems, so that
#: "confirmed", "confirms" and "confirmation" all match.
WINDOW_TERMS: Final[tuple[str, ...]] = (
    r"hours?",
    r"hrs?",
    r"minutes?",
    r"days?",
    r"weeks?",
    r"months?",
    r"window",
    r"within",
    r"until",
    r"expir\w*",
    r"resol\w*",
    r"confirm\w*",
    r"assum\w*",
    r"reopen\w*",
    r"clos(?:e|ed|es|ing|ure)",
    r"inactiv\w*",
    r"automatic\w*",
    r"bill\w*",
    r"charg\w*",
    r"count(?:s|ed|ing)?",
    r"exclud\w*",
    r"deflect\w*",
)
_FLAG: Final = re.compile(
    r"(?<![\w.])(?:" + _NUMBER + r")(?!\w)|\b(?:" + "|".join(WINDOW_TERMS) + r")\b",
    re.IGNORECASE,
)
#: A sentence ends at . ! or ? followed by space and something that can start a sentence.
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
#: The heading or list marker the extractor puts before a line's text.
_MARKER: Final = re.compile(r"^\s*(?:#{1,6}|[-*]|\d+[.)])\s+")
#: Words, single punctuation marks and runs of spaces: the units of the in-line word diff.
_TOKEN: Final = re.compile(r"\w+|[^\w\s]|\s+")
#: Above this many tokens on either side of a changed block, lines are marked changed whole
#: rather than word by word (difflib's matcher is quadratic in the worst case).
MAX_WORD_DIFF_TOKENS: Final[int] = 20_000


def flags(sentence: str) -> tuple[str, ...]:
    """The numbers and window words a sentence mentions, lower-cased, each once, in order."""
    seen: dict[str, None] = {}
    for match in _FLAG.finditer(sentence):
        seen.setdefault(match.group(0).strip().lower(), None)
    return tuple(seen)


def sentences(text: str) -> list[str]:
    """The sentences of a text: each line split after ``.``, ``!`` or ``?`` (approximate).

    A line's heading or list marker (``## ``, ``- ``, ``3. ``) is not part of its sentences, so
    renumbering a list does not read as changed wording.
    """
    return [
        s
        for line in text.splitlines()
        for s in _SENTENCE_END.split(_MARKER.sub("", line))
        if s.strip()
    ]


@dataclass(frozen=True)
class Segment:
    """A run of text in a diff line, and whether it differs from the other side."""

    text: str
    changed: bool


@dataclass(frozen=True)
class DiffLine:
    """One line of a hunk: kept (``" "``), removed (``"-"``) or added (``"+"``)."""

    op: Op
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)


@dataclass(frozen=True)
class Hunk:
    """A group of changes with context; line numbers are 1-based, as in a unified diff."""

    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[DiffLine, ...]


@dataclass(frozen=True)
class SentenceChange:
    """A sentence present only before (removed) or only after (added), with its flags."""

    text: str
    flags: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "flags": list(self.flags)}


@dataclass(frozen=True)
class TextDiff:
    """Two readable texts compared line by line, word by word and sentence by sentence."""

    old_lines: tuple[str, ...]
    new_lines: tuple[str, ...]
    lines_added: int
    lines_removed: int
    lines_unchanged: int
    hunks: tuple[Hunk, ...]
    sentences_removed: tuple[SentenceChange, ...]
    sentences_added: tuple[SentenceChange, ...]

    @property
    def identical(self) -> bool:
        return self.old_lines == self.new_lines

    @property
    def flagged(self) -> tuple[SentenceChange, ...]:
        """Changed sentences that mention a number or a window word."""
        return tuple(s for s in (*self.sentences_removed, *self.sentences_added) if s.flagged)

    def unified(self, fromfile: str, tofile: str, context: int = 3) -> list[str]:
        """The classic unified diff of the readable text, one string per line."""
        return list(
            difflib.unified_diff(
                list(self.old_lines),
                list(self.new_lines),
                fromfile=fromfile,
                tofile=tofile,
                n=context,
                lineterm="",
            )
        )


def _changed_sentences(ours: list[str], theirs: list[str]) -> tuple[SentenceChange, ...]:
    """Sentences of ``ours`` not in ``theirs``, counting repeats (a multiset difference)."""
    extra = Counter(ours) - Counter(theirs)
    out: list[SentenceChange] = []
    for s in ours:
        if extra[s] > 0:
            extra[s] -= 1
            out.append(SentenceChange(s, flags(s)))
    return tuple(out)


def _tokens(lines: list[str]) -> list[tuple[int, str]]:
    """(line index, token) for a block of lines; a newline token keeps lines apart."""
    out: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        out.extend((i, t) for t in _TOKEN.findall(line))
        out.append((i, "\n"))
    return out


def _merge(segs: list[Segment]) -> tuple[Segment, ...]:
    """Join neighbours of one kind; a space between two changed runs joins them."""
    out: list[Segment] = []
    for seg in segs:
        if out and out[-1].changed == seg.changed:
            out[-1] = Segment(out[-1].text + seg.text, seg.changed)
        elif seg.changed and len(out) >= 2 and out[-1].text.isspace() and out[-2].changed:
            space = out.pop()
            out[-1] = Segment(out[-1].text + space.text + seg.text, True)
        else:
            out.append(seg)
    return tuple(out)


def _segments_of(
    tokens: list[tuple[int, str]], changed: list[bool], n_lines: int
) -> list[tuple[Segment, ...]]:
    """Group marked tokens back into lines of segments."""
    per_line: list[list[Segment]] = [[] for _ in range(n_lines)]
    for (line, tok), flag in zip(tokens, changed, strict=True):
        if tok != "\n":
            per_line[line].append(Segment(tok, flag))
    return [_merge(segs) for segs in per_line]


def _word_diff(old: list[str], new: list[str]) -> tuple[list[DiffLine], list[DiffLine]]:
    """Removed and added lines of a replaced block, with the changed words marked."""
    a, b = _tokens(old), _tokens(new)
    if max(len(a), len(b)) > MAX_WORD_DIFF_TOKENS:
        return (
            [DiffLine("-", (Segment(line, True),)) for line in old],
            [DiffLine("+", (Segment(line, True),)) for line in new],
        )
    matcher = difflib.SequenceMatcher(None, [t for _, t in a], [t for _, t in b], autojunk=False)
    a_changed, b_changed = [True] * len(a), [True] * len(b)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            a_changed[i1:i2] = [False] * (i2 - i1)
            b_changed[j1:j2] = [False] * (j2 - j1)
    return (
        [DiffLine("-", segs) for segs in _segments_of(a, a_changed, len(old))],
        [DiffLine("+", segs) for segs in _segments_of(b, b_changed, len(new))],
    )


def diff_texts(old: str, new: str, context: int = 3) -> TextDiff:
    """Compare two readable texts (one line per block, as :mod:`.extract` produces)."""
    a, b = old.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    added = removed = unchanged = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            unchanged += i2 - i1
        else:
            removed += i2 - i1
            added += j2 - j1
    hunks: list[Hunk] = []
    for group in matcher.get_grouped_opcodes(context):
        lines: list[DiffLine] = []
        for op, i1, i2, j1, j2 in group:
            if op == "equal":
                lines.extend(DiffLine(" ", (Segment(line, False),)) for line in a[i1:i2])
                continue
            gone, came = _word_diff(a[i1:i2], b[j1:j2])
            lines.extend(gone)
            lines.extend(came)
        first, last = group[0], group[-1]
        hunks.append(
            Hunk(
                old_start=first[1] + 1,
                old_count=last[2] - first[1],
                new_start=first[3] + 1,
                new_count=last[4] - first[3],
                lines=tuple(lines),
            )
        )
    old_s, new_s = sentences(old), sentences(new)
    return TextDiff(
        old_lines=tuple(a),
        new_lines=tuple(b),
        lines_added=added,
        lines_removed=removed,
        lines_unchanged=unchanged,
        hunks=tuple(hunks),
        sentences_removed=_changed_sentences(old_s, new_s),
        sentences_added=_changed_sentences(new_s, old_s),
    )
