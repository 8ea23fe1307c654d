"""Action names and agent ids that an attacker writes: invisible characters, look-alikes, mixed scripts.

Three checks, each cached per distinct name (a hot name costs one dict probe; an ASCII name costs no Unicode
lookups at all):

* ``forbidden_character(name)``: the first control, format, surrogate, private-use, unassigned or
  noncharacter code point (Unicode general categories Cc, Cf, Cs, Co, Cn, plus the 66 noncharacters), or
  None. Such a name is DENIED, never stripped: ``de\\u200blete`` is not silently turned into ``delete``
  (which might be allowed where the caller meant something else) nor kept as a name no rule mentions.
* ``skeleton_key(name)``: the UTS #39 confusable skeleton (ICU's ``SpoofChecker``, whose ``confusables.txt``
  data ships with ICU and is maintained by the Unicode Consortium) of the normalised name, with combining
  marks removed and case folded again. ``bot``, ``bоt`` (Cyrillic о), ``BOT``, ``b0t`` and ``bót`` share it.
  Agent ids that share a skeleton are one agent (the registry refuses the second); deny and escalate rules
  match a name whose skeleton matches theirs.
* ``scripts(name)`` / ``is_mixed_script(name)``: the scripts a name is written in (UTS #24 Script_Extensions,
  with UTS #39's augmentation so Han + Hiragana/Katakana (Japanese) and Han + Hangul (Korean) count as one)
  and whether no single script covers it: ``dеlete:users`` with a Cyrillic ``е`` is mixed (Latin, Cyrillic).

Why ICU (PyICU) rather than a hand-made list or ``confusable-homoglyphs``/``confusables``: ICU implements
UTS #39 itself (``getSkeleton`` is the specification's algorithm over the current ``confusables.txt``), is
released with every Unicode version, and computes a skeleton in ~1.5 us; the two pure-Python packages ship
a symmetric char-to-char table (multi-character prototypes such as ``rn`` for ``m`` are lost) and had their
last releases in 2021 and January 2024. On Linux and Windows the distribution is ``pyicu-wheels`` (PyICU
prebuilt with ICU bundled); both provide the ``icu`` module.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import icu

from claw_governance.policy.patterns import normalize

_FORBIDDEN_CATEGORIES = {
    "Cc": "control",
    "Cf": "format (invisible)",
    "Cs": "surrogate",
    "Co": "private-use",
    "Cn": "unassigned",
}
_CACHE = 65536
_SPOOF = icu.SpoofChecker()
_COMMON = {"Zyyy", "Zinh"}  # Common and Inherited: punctuation, digits, combining marks go with any script
_SCRIPT_NAMES: dict[int, str] = {}


def _is_noncharacter(cp: int) -> bool:
    return 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE


def describe_character(ch: str) -> str:
    """``U+200B ZERO WIDTH SPACE`` (or the code point alone when it has no name)."""
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


@lru_cache(maxsize=_CACHE)
def _forbidden(name: str) -> str | None:
    for ch in name:
        category = unicodedata.category(ch)
        kind = "noncharacter" if _is_noncharacter(ord(ch)) else _FORBIDDEN_CATEGORIES.get(category)
        if kind is not None:
            return f"{describe_character(ch)} ({kind} character, category {category})"
    return None


def forbidden_character(name: str) -> str | None:
    """A description of the first character that may not appear in an action name or agent id, or None."""
    if name.isascii() and name.isprintable():  # the usual case: no Unicode database lookups
        return None
    return _forbidden(name)


def _bare(skeleton: str) -> str:
    return normalize(
        "".join(ch for ch in unicodedata.normalize("NFD", skeleton) if not unicodedata.category(ch).startswith("M"))
    )


@lru_cache(maxsize=_CACHE)
def skeleton_key(name: str) -> str:
    """The name as look-alikes share it: UTS #39 skeleton of the normalised name, marks removed, folded."""
    return _bare(_SPOOF.getSkeleton(0, normalize(name)))


@lru_cache(maxsize=_CACHE)
def skeleton_keys(name: str) -> frozenset[str]:
    """``skeleton_key(name)`` and the skeleton taken before case folding: UTS #39 skeletons are case-sensitive
    (``I`` looks like ``l``, ``i`` does not), so ``deIete`` is a look-alike of ``delete`` only before folding,
    and ``KILL`` of ``kill`` only after."""
    return frozenset({skeleton_key(name), _bare(_SPOOF.getSkeleton(0, unicodedata.normalize("NFKC", name).strip()))})


def _script_name(code: int) -> str:
    found = _SCRIPT_NAMES.get(code)
    if found is None:
        found = _SCRIPT_NAMES[code] = icu.Script(code).getShortName()
    return found


def _augment(found: set[str]) -> set[str]:
    # UTS #39 section 5.1: Han is also written with Japanese kana (Jpan), Hangul (Kore) and Bopomofo (Hanb).
    out = set(found)
    if "Hani" in found:
        out |= {"Jpan", "Kore", "Hanb"}
    if found & {"Hira", "Kana"}:
        out.add("Jpan")
    if "Hang" in found:
        out.add("Kore")
    if "Bopo" in found:
        out.add("Hanb")
    return out


@lru_cache(maxsize=_CACHE)
def _analyse(name: str) -> tuple[frozenset[str], bool]:
    used: set[str] = set()
    resolved: set[str] | None = None
    for ch in name:
        ext = {_script_name(code) for code in icu.Script.getScriptExtensions(ch)}
        if ext <= _COMMON:
            continue
        used |= {_script_name(icu.Script.getScript(ch).getScriptCode())} - _COMMON or ext
        aug = _augment(ext)
        resolved = aug if resolved is None else resolved & aug
    return frozenset(used), resolved is not None and not resolved


def scripts(text: str) -> frozenset[str]:
    """The scripts (ISO 15924 short names) the text's letters belong to, Common and Inherited left out."""
    if text.isascii():
        return frozenset({"Latn"}) if any(ch.isalpha() for ch in text) else frozenset()
    return _analyse(text)[0]


def is_mixed_script(text: str) -> bool:
    """True when no one script (UTS #39 resolved script set, augmented) covers every letter of ``text``."""
    if text.isascii():
        return False
    return _analyse(text)[1]
