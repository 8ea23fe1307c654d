"""Action names and patterns: normalisation and an index that finds matching rules without walking them all.

A pattern is literal text in which ``*`` matches any run of characters (including none); nothing else is
special, so there is no regex syntax to abuse. Names and patterns are compared after NFKC normalisation,
case folding and trimming, so ``"Ｄelete:Users "`` is ``"delete:users"``.

The index keeps exact patterns in a dict, ``prefix*`` patterns in a dict probed once per distinct prefix
length, ``*suffix`` likewise, and patterns with ``*`` in the middle in buckets keyed by their literal
prefix (or suffix), checked with a compiled regex. Only ``*x*``-style patterns sit in a short list that is
scanned. Lookups are memoised per action, so a hot action costs one dict probe.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_CACHE_LIMIT = 8192


def normalize(name: str) -> str:
    """NFKC, case folding (twice: folding can produce new NFKC-composable text), trimming."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold()).casefold().strip()


def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regex of a (normalised) pattern: ``*`` is ``.*``, everything else literal; use ``fullmatch``."""
    return re.compile(
        "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern)), re.DOTALL
    )


def glob_match(pattern: str, name: str) -> bool:
    """Whether normalised ``name`` matches normalised ``pattern`` (reference implementation, no index)."""
    return compile_glob(pattern).fullmatch(name) is not None


class PatternIndex(Generic[T]):
    """Maps normalised patterns to items; ``lookup(name)`` returns every item whose pattern matches."""

    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        self._exact: dict[str, list[T]] = {}
        self._prefix: dict[str, list[T]] = {}
        self._suffix: dict[str, list[T]] = {}
        self._prefix_lengths: list[int] = []
        self._suffix_lengths: list[int] = []
        self._anchored_prefix: dict[str, list[tuple[re.Pattern[str], T]]] = {}
        self._anchored_suffix: dict[str, list[tuple[re.Pattern[str], T]]] = {}
        self._apl: list[int] = []
        self._asl: list[int] = []
        self._floating: list[tuple[re.Pattern[str], T]] = []
        self._everything: list[T] = []
        self._cache: dict[str, tuple[T, ...]] = {}
        self._size = 0
        for pattern, item in entries:
            self._add(pattern, item)
        self._prefix_lengths = sorted({len(p) for p in self._prefix})
        self._suffix_lengths = sorted({len(s) for s in self._suffix})
        self._apl = sorted({len(p) for p in self._anchored_prefix})
        self._asl = sorted({len(s) for s in self._anchored_suffix})

    def __len__(self) -> int:
        return self._size

    def _add(self, pattern: str, item: T) -> None:
        self._size += 1
        stars = pattern.count("*")
        if stars == 0:
            self._exact.setdefault(pattern, []).append(item)
        elif pattern.strip("*") == "":
            self._everything.append(item)
        elif stars == 1 and pattern.endswith("*"):
            self._prefix.setdefault(pattern[:-1], []).append(item)
        elif stars == 1 and pattern.startswith("*"):
            self._suffix.setdefault(pattern[1:], []).append(item)
        elif not pattern.startswith("*"):
            head = pattern[: pattern.index("*")]
            self._anchored_prefix.setdefault(head, []).append((compile_glob(pattern), item))
        elif not pattern.endswith("*"):
            tail = pattern[pattern.rindex("*") + 1 :]
            self._anchored_suffix.setdefault(tail, []).append((compile_glob(pattern), item))
        else:
            self._floating.append((compile_glob(pattern), item))

    def _scan(self, name: str) -> Iterator[T]:
        yield from self._everything
        yield from self._exact.get(name, ())
        n = len(name)
        for length in self._prefix_lengths:
            if length > n:
                break
            yield from self._prefix.get(name[:length], ())
        for length in self._suffix_lengths:
            if length > n:
                break
            yield from self._suffix.get(name[n - length :], ())
        for length in self._apl:
            if length > n:
                break
            for rx, item in self._anchored_prefix.get(name[:length], ()):
                if rx.fullmatch(name):
                    yield item
        for length in self._asl:
            if length > n:
                break
            for rx, item in self._anchored_suffix.get(name[n - length :], ()):
                if rx.fullmatch(name):
                    yield item
        for rx, item in self._floating:
            if rx.fullmatch(name):
                yield item

    def lookup(self, name: str) -> tuple[T, ...]:
        """Every item whose pattern matches the normalised ``name`` (memoised)."""
        hit = self._cache.get(name)
        if hit is None:
            hit = tuple(self._scan(name))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()  # bounded memory: a flood of random names cannot grow it
            self._cache[name] = hit
        return hit
