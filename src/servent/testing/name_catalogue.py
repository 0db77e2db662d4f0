"""Names of shared files as people name them: a made-up vocabulary, Zipf-like use of words.

Words are built from syllables (so nothing real is copied); a name takes 2-5
words, each drawn with probability ~ 1/rank, so a few words ("live",
"remastered") are everywhere and most are rare, as in real file names.
Files are shared with Zipf popularity: a few by many nodes, most by one.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass

_SYLLABLE_TEXT = "ka ri to ma ne lo su vi da pe ro mi zu ta le no sa ki ba do ra fe gu lin mar tos"
SYLLABLES = (
    *_SYLLABLE_TEXT.split(),
    "vel",
    "dan",
    "ube",
    "wal",
    "tz",
    "ori",
    "son",
    "ast",
    "ek",
    "ul",
)
SEPARATORS = (" ", "_", "-", ".", " - ")
EXTENSIONS = ("flac", "mkv", "mp3", "pdf", "iso", "zip", "ogg", "epub")


@dataclass(frozen=True, slots=True)
class CatalogueFile:
    number: int
    name: str
    words: tuple[str, ...]
    info_hash: bytes
    size: int


def _cumulative(count: int, exponent: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank**exponent) for rank in range(1, count + 1)))


def zipf_choice(rng: random.Random, cumulative: list[float]) -> int:
    return bisect.bisect_left(cumulative, rng.random() * cumulative[-1])


class NameCatalogue:
    """``files`` distinct files over a ``vocabulary`` of words; pick files by popularity."""

    def __init__(self, rng: random.Random, files: int, vocabulary: int = 20_000) -> None:
        self.rng = rng
        self.vocabulary = self._make_words(vocabulary)
        self._word_weights = _cumulative(len(self.vocabulary), 0.9)
        self.files = [self._make_file(number) for number in range(files)]
        self._popularity = _cumulative(files, 0.8)

    def _make_words(self, count: int) -> list[str]:
        made: dict[str, None] = {}
        while len(made) < count:
            made["".join(self.rng.choices(SYLLABLES, k=self.rng.randint(2, 4)))] = None
        return list(made)

    def _make_file(self, number: int) -> CatalogueFile:
        rng = self.rng
        chosen: dict[str, None] = {}
        while len(chosen) < rng.randint(2, 5):
            chosen[self.vocabulary[zipf_choice(rng, self._word_weights)]] = None
        words = tuple(chosen)
        separator = rng.choice(SEPARATORS)
        shown = [w.capitalize() if rng.random() < 0.5 else w for w in words]
        name = separator.join(shown) + "." + rng.choice(EXTENSIONS)
        info_hash = rng.getrandbits(160).to_bytes(20, "big")
        return CatalogueFile(number, name, words, info_hash, rng.randint(10**5, 10**10))

    def popular_file(self) -> CatalogueFile:
        return self.files[zipf_choice(self.rng, self._popularity)]

    def absent_words(self, count: int = 2) -> tuple[str, ...]:
        """Words that no name uses together (made fresh, so no file has them)."""
        return tuple("".join(self.rng.choices(SYLLABLES, k=6)) + "q" for _ in range(count))
