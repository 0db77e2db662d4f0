"""Words of names and queries, the keywords a name is published under, and their keys.

One normaliser serves the local index, the keyword index and the querier's
check of answers, so the three agree on what matches (``docs/search.md`` §1).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence

__all__ = [
    "KEY_SIZE",
    "MAX_KEYWORDS",
    "keyword_key",
    "keywords",
    "match_quality",
    "matches",
    "node_position",
    "normalise",
    "rarest_keyword",
    "words",
]

KEY_SIZE = 20
MAX_WORD_BYTES = 64
MAX_WORDS = 32
MAX_KEYWORDS = 8
MAX_QUERY_WORDS = 8
STOP_WORDS = frozenset(
    {"the", "and", "of", "a", "mp3", "flac", "mkv", "avi", "mp4", "www", "com", "org"}
)
_SEPARATORS = re.compile(r"[^\w]+|_+")


def normalise(text: str) -> str:
    """Accents removed, case folded (``Éé`` -> ``ee``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold()


def words(text: str, limit: int = MAX_WORDS) -> list[str]:
    """The words of ``text`` in order: letters and digits, everything else separates."""
    return list(_words(text, limit))


@functools.lru_cache(maxsize=131_072)
def _words(text: str, limit: int) -> tuple[str, ...]:
    found: list[str] = []
    for piece in _SEPARATORS.split(normalise(text)):
        if not piece:
            continue
        encoded = piece.encode("utf-8")
        found.append(encoded[:MAX_WORD_BYTES].decode("utf-8", "ignore"))
        if len(found) >= limit:
            break
    return tuple(found)


def keywords(texts: Iterable[str]) -> list[str]:
    """The keywords an entry is published under: distinct, not stop words, the longest."""
    return list(_keywords(tuple(texts)))


@functools.lru_cache(maxsize=65_536)
def _keywords(texts: tuple[str, ...]) -> tuple[str, ...]:
    distinct: dict[str, None] = {}
    for text in texts:
        for word in words(text):
            if len(word) >= 2 and word not in STOP_WORDS:
                distinct[word] = None
    ranked = sorted(distinct, key=lambda word: -len(word))
    return tuple(ranked[:MAX_KEYWORDS])


def rarest_keyword(query: str) -> str | None:
    """The query word looked up in the keyword index: the longest (first of equals)."""
    candidates = [w for w in words(query, MAX_QUERY_WORDS) if len(w) >= 2]
    useful = [w for w in candidates if w not in STOP_WORDS] or candidates
    if not useful:
        return None
    return max(useful, key=len)


def keyword_key(keyword: str) -> bytes:
    return hashlib.sha256(b"servent-search/1 keyword:" + keyword.encode("utf-8")).digest()[
        :KEY_SIZE
    ]


def node_position(public_key: bytes) -> bytes:
    return hashlib.sha256(b"servent-search/1 node:" + public_key).digest()[:KEY_SIZE]


def _word_set(texts: Sequence[str]) -> tuple[str, ...]:
    if len(texts) == 1:
        return _words(texts[0], MAX_WORDS)
    found: list[str] = []
    for text in texts:
        found.extend(_words(text, MAX_WORDS))
    return tuple(found)


def matches(query: str, texts: Sequence[str], *, whole: str | None = None) -> bool:
    """Every query word is a prefix of some word of ``texts`` (``whole`` must be a word)."""
    return match_quality(query, texts, whole=whole) > 0.0


def match_quality(query: str, texts: Sequence[str], *, whole: str | None = None) -> float:
    """0 when the texts do not match; otherwise higher for whole words and words in order."""
    asked = words(query, MAX_QUERY_WORDS)
    if not asked:
        return 0.0
    have = _word_set(texts)
    if whole is not None and whole not in have:
        return 0.0
    score = 0.0
    positions: list[int] = []
    for word in asked:
        exact = [i for i, w in enumerate(have) if w == word]
        if exact:
            score += 1.0
            positions.append(exact[0])
            continue
        prefixed = [i for i, w in enumerate(have) if w.startswith(word)]
        if not prefixed:
            return 0.0
        score += 0.6
        positions.append(prefixed[0])
    in_order = all(a < b for a, b in itertools.pairwise(positions))
    bonus = 0.5 if in_order and len(asked) > 1 else 0.0
    coverage = len(asked) / max(len(have), len(asked))
    return score / len(asked) + bonus + 0.25 * coverage
