"""Secret-looking values inside any string: the detector half of redaction (key names are in ``keynames``).

The formats come from Yelp's detect-secrets (its regex plugins: AWS, GitHub, GitLab, Slack, Stripe, OpenAI,
JWT, private keys, Basic auth in URLs, SendGrid, Twilio, npm, PyPI, ...), plus a few it lacks (Google API
keys, fine-grained GitHub tokens, modern OpenAI/Anthropic keys, ``Bearer``/``Basic`` headers, card numbers
passing Luhn with any separators, US SSNs, and a value after a secret keyword such as ``password=`` or
``secret is``).

Every pattern runs on RE2 (google-re2), whose matching time is linear in the text whatever the pattern:
several detect-secrets patterns are quadratic on Python's backtracking ``re`` (``"sk-" * 3000`` takes
0.6 s with its OpenAI pattern). One RE2 set match tells which detectors can match at all (about 5 us for a
short string, 7 us per KiB); a short string first goes through ``may_hold_secret``, a prefilter of str
methods (about 1 us), so the common case (short, harmless strings) never reaches RE2.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import importlib
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]  # (google-re2 ships no type information)

# detect-secrets plugins used, by module and class. Left out, on purpose: KeywordDetector (its patterns are
# tuned for source code and are super-linear; ``_KEYWORD`` below does its job), the two high-entropy string
# detectors (an audit entry is full of SHA-256 digests and ids the governor itself writes: they would all be
# "secrets"), and IPPublicDetector (an IP address is not a credential).
LIBRARY_PLUGINS = (
    ("artifactory", "ArtifactoryDetector"),
    ("aws", "AWSKeyDetector"),
    ("azure_storage_key", "AzureStorageKeyDetector"),
    ("basic_auth", "BasicAuthDetector"),
    ("cloudant", "CloudantDetector"),
    ("discord", "DiscordBotTokenDetector"),
    ("github_token", "GitHubTokenDetector"),
    ("gitlab_token", "GitLabTokenDetector"),
    ("ibm_cloud_iam", "IbmCloudIamDetector"),
    ("ibm_cos_hmac", "IbmCosHmacDetector"),
    ("jwt", "JwtTokenDetector"),
    ("mailchimp", "MailchimpDetector"),
    ("npm", "NpmDetector"),
    ("openai", "OpenAIDetector"),
    ("private_key", "PrivateKeyDetector"),
    ("pypi_token", "PypiTokenDetector"),
    ("sendgrid", "SendGridDetector"),
    ("slack", "SlackDetector"),
    ("softlayer", "SoftlayerDetector"),
    ("square_oauth", "SquareOAuthDetector"),
    ("stripe", "StripeDetector"),
    ("telegram_token", "TelegramBotTokenDetector"),
    ("twilio", "TwilioKeyDetector"),
)

# Characters a token is made of: a match is widened to the whole run of them around it, so a pattern that
# names a fixed length (detect-secrets' Stripe pattern takes 24 characters of today's 99) hides the rest too.
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.~")
_SEPARATORS = " \t\\-./_\u00a0\u2009\u202f"

# Our own patterns (RE2 syntax: no look-around; boundaries are checked in Python where needed).
_OWN_PATTERNS: tuple[tuple[str, str, bool], ...] = (
    # name, pattern, widen the match to the whole token
    (
        "private-key",
        r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?s:.*?)"
        r"(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|$)",
        False,
    ),
    ("bearer", r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{8,}=*)", True),
    ("basic-auth", r"(?i)\bbasic\s+([A-Za-z0-9+/]{8,}={0,2})", False),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}", True),
    ("google-api-key", r"AIza[0-9A-Za-z_\-]{35}", True),
    ("google-oauth", r"\bya29\.[0-9A-Za-z_\-]{20,}", True),
    ("github-pat", r"github_pat_[A-Za-z0-9_]{22,}", True),
    ("api-key", r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_\-]{20,}", True),
    ("stripe", r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{16,}", True),
    ("slack", r"\bxox[abposr]-[0-9A-Za-z\-]{10,}", True),
    ("card", r"\d(?:[" + _SEPARATORS + r"]{0,3}\d){12,}", False),
    ("ssn", r"\d{3}-\d{2}-\d{4}", False),
    # A value after a secret keyword: "password=hunter2", "token: abc...", "the secret is xyz". (Unbounded
    # repeats, not {0,20}-style counts: RE2 is linear either way and counted repeats blow up its DFA.)
    (
        "keyword",
        r"(?:^|[^A-Za-z])((?i:pass(?:word|wd|phrase)?|pwd|secret|credentials?|token|api[_\- ]?key|"
        r"access[_\- ]?key|private[_\- ]?key|client[_\- ]?secret|auth[_\- ]?token))"
        r"(?:[_\-.][A-Za-z0-9]+)*[\"']?[ \t]*(?:[:=]|=>|:=|[ \t](?i:is|was|are)[ \t])[ \t]*"
        r"[\"']?([^\s\"'`,;<>(){}\[\]]{4,})",
        False,
    ),
    (
        "keyword",
        r"[a-z0-9]((?:Password|Passwd|Passphrase|Secret|Token|ApiKey|AccessKey|PrivateKey|"
        r"ClientSecret|AuthToken|Credentials?))[\"']?[ \t]*(?:[:=]|=>|:=)[ \t]*[\"']?"
        r"([^\s\"'`,;<>(){}\[\]]{4,})",
        False,
    ),
)

# The prefilter, for short strings (the common case): str methods only, all of them C loops over the text.
# Every detector needs one of: a keyword below (the keyword detector, Bearer/Basic, Azure, npm, IBM and
# Cloudant patterns, private-key headers, credentials in URLs), 8 or more digits (cards, SSNs, Telegram), or
# a whitespace-delimited word of 8+ characters that is not plain lower-case letters (every token format:
# each has a digit, a capital, "_", "-" or "." in it). tests/test_secrets.py checks the superset property.
_KEYWORDS = (
    "pass",
    "pwd",
    "secret",
    "credential",
    "token",
    "key",
    "auth",
    "bearer",
    "basic",
    "://",
    "begin",
    "putty",
    "aws",
    "cloudant",
    "softlayer",
    "private",
)
_DROP_DIGITS = str.maketrans("", "", "0123456789")
PREFILTER_MAX = 256  # longer strings go straight to the RE2 set, which is faster than a Python word loop


def may_hold_secret(text: str) -> bool:
    """False only if no detector can match ``text`` (cheap; see above)."""
    lower = text.lower()
    for keyword in _KEYWORDS:
        if keyword in lower:
            return True
    if len(text) - len(text.translate(_DROP_DIGITS)) >= 8:
        return True
    return any(len(word) >= 8 and not (word.isalpha() and word.islower()) for word in text.split())


_STOPWORDS = frozenset(
    {
        "incorrect",
        "invalid",
        "required",
        "wrong",
        "missing",
        "expired",
        "changed",
        "reset",
        "none",
        "null",
        "empty",
        "true",
        "false",
        "unknown",
        "redacted",
        "hidden",
        "masked",
        "needed",
        "accepted",
        "rejected",
        "updated",
        "valid",
        "ok",
        "yes",
        "not",
        "the",
        "your",
        "this",
        "that",
        "set",
        "unset",
        "present",
        "absent",
    }
)
_STRONG = ("pass", "pwd", "secret", "credential", "private", "client")


@dataclass(frozen=True, slots=True)
class _Detector:
    name: str
    regex: Any  # re2._Regexp
    widen: bool
    check: Callable[[str, str, int, int], bool] | None = None  # (text, keyword group, start, end) -> keep?


def _re2_syntax(pattern: str) -> str:
    """A detect-secrets pattern in RE2 syntax: its two look-around idioms become consuming groups outside the
    captured secret, and a repetition bound over RE2's 1000 is opened (``{50,1024}`` -> ``{50,}``)."""
    pattern = pattern.replace("(?:(?<=\\W)|(?<=^))", "(?:^|\\W)")
    pattern = pattern.replace("(?!\\w)", "(?:\\W|$)")
    pattern = re.sub(r"\(\?!\[([^\]^]+)\]\)", r"(?:[^\1]|$)", pattern)  # (?![class]) -> (?:[^class]|$)
    return re.sub(r"\{(\d+),(\d{4,})\}", r"{\1,}", pattern)


def _shannon(text: str) -> float:
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    size = len(text)
    return -sum(c / size * math.log2(c / size) for c in counts.values())


def _keyword_value(text: str, keyword: str, start: int, end: int) -> bool:
    value = text[start:end]
    if value.lower().strip(".!?") in _STOPWORDS:
        return False
    if keyword.lower().startswith(_STRONG):  # after "password" or "secret" anything is the secret
        return True
    if len(value) < 8:
        return False
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    return (has_digit and has_alpha) or _shannon(value) >= 3.0


def _basic_credentials(text: str, keyword: str, start: int, end: int) -> bool:
    try:
        decoded = base64.b64decode(text[start:end] + "==", validate=False)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def _ssn(text: str, keyword: str, start: int, end: int) -> bool:
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    return not before.isdigit() and not after.isdigit() and text[start : start + 3] not in ("000", "666")


def luhn_valid(digits: str) -> bool:
    """True if the digit string passes the Luhn check (as every real card number does)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_DIGIT_GROUP = re.compile(r"\d+")  # linear: one class, one quantifier


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # a digit's Luhn contribution when doubled


def _card_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The card numbers inside a run of digits and separators: windows of whole digit groups holding 13-19
    digits that pass Luhn. Luhn sums come from two prefix sums (one per doubling parity), so each window is
    O(1) and a start tries at most 19 groups: linear in the run."""
    groups = [m.span() for m in _DIGIT_GROUP.finditer(text, start, end)]  # (positions are absolute)
    digits = [ord(c) - 48 for a, b in groups for c in text[a:b]]
    # even[k]: sum over m < k of the digit doubled when m is even, plain when odd; odd[k]: the other way.
    even = [0] * (len(digits) + 1)
    odd = [0] * (len(digits) + 1)
    for m, d in enumerate(digits):
        if m % 2:
            even[m + 1], odd[m + 1] = even[m] + d, odd[m] + _DOUBLED[d]
        else:
            even[m + 1], odd[m + 1] = even[m] + _DOUBLED[d], odd[m] + d
    offsets = [0]  # digit index where each group starts
    for a, b in groups:
        offsets.append(offsets[-1] + b - a)
    spans: list[tuple[int, int]] = []
    count = len(groups)
    i = 0
    while i < count:
        first = offsets[i]
        # Window ends (offsets[k], k > i) holding 13..19 digits, longest first.
        lo = bisect.bisect_left(offsets, first + 13, i + 1)
        hi = bisect.bisect_right(offsets, first + 19, lo)
        hit = 0
        for k in range(hi - 1, lo - 1, -1):
            last = offsets[k]
            # The rightmost digit (last - 1) is not doubled, so digits of the other parity are.
            table = even if (last - 1) & 1 else odd
            if (table[last] - table[first]) % 10 == 0:
                hit = k
                break
        if hit:
            spans.append((groups[i][0], groups[hit - 1][1]))
            i = hit
        else:
            i += 1
    return spans


class _Compiled:
    """The detectors, compiled once on first use (importing detect-secrets' plugins costs ~0.1 s)."""

    def __init__(self) -> None:
        options = re2.Options()
        options.log_errors = False
        options.max_mem = 64 << 20
        detectors: list[_Detector] = []
        self.skipped: list[tuple[str, str]] = []  # (pattern, why): shown by tests, none expected
        from detect_secrets.plugins.jwt import JwtTokenDetector

        for module_name, class_name in LIBRARY_PLUGINS:
            module = importlib.import_module(f"detect_secrets.plugins.{module_name}")
            cls = getattr(module, class_name)
            check = None
            if cls is JwtTokenDetector:

                def check(text: str, keyword: str, start: int, end: int) -> bool:
                    return bool(JwtTokenDetector.is_formally_valid(text[start:end]))

            for regex in cls.denylist:
                flags = "(?i)" if regex.flags & re.IGNORECASE else ""
                source = _re2_syntax(regex.pattern)
                if regex.flags & re.VERBOSE and any(c.isspace() for c in source):
                    self.skipped.append((regex.pattern, "verbose pattern"))
                    continue
                try:
                    compiled = re2.compile(flags + source, options)
                except re2.error as exc:
                    self.skipped.append((regex.pattern, str(exc)))
                    continue
                name = class_name.removesuffix("Detector").lower()
                widen = class_name not in ("PrivateKeyDetector", "BasicAuthDetector")
                detectors.append(_Detector(name, compiled, widen, check))
        own_checks: dict[str, Callable[[str, str, int, int], bool]] = {
            "keyword": _keyword_value,
            "basic-auth": _basic_credentials,
            "ssn": _ssn,
        }
        for name, pattern, widen in _OWN_PATTERNS:
            detectors.append(_Detector(name, re2.compile(pattern, options), widen, own_checks.get(name)))
        self.detectors = tuple(detectors)
        self.gate = re2.Set.SearchSet(options)
        for detector in detectors:
            self.gate.Add(detector.regex.pattern)
        self.gate.Compile()


_compiled: _Compiled | None = None
_compile_lock = threading.Lock()


def compiled() -> _Compiled:
    """The compiled detectors (built on first call)."""
    global _compiled
    if _compiled is None:
        with _compile_lock:
            if _compiled is None:
                _compiled = _Compiled()
    return _compiled


def _widen(text: str, start: int, end: int, floor: int) -> tuple[int, int]:
    size = len(text)
    while end < size and text[end] in _TOKEN_CHARS:
        end += 1
    while start > floor and text[start - 1] in _TOKEN_CHARS:
        start -= 1
    return start, end


def find_secrets(text: str, *, prefilter: bool = True) -> list[tuple[int, int, str]]:
    """``(start, end, kind)`` of every secret-looking span in ``text``, sorted and not overlapping.

    Linear in ``len(text)``: a linear prefilter, one RE2 set match, then RE2 scans of the detectors that
    matched; widening never re-reads what an earlier span covered. (``prefilter=False`` is for tests that
    check the prefilter misses nothing.)
    """
    if prefilter and len(text) <= PREFILTER_MAX and not may_hold_secret(text):
        return []
    state = compiled()
    # ASCII text (nearly all of it) is matched as bytes: byte offsets are character offsets, and the wrapper
    # neither re-encodes the text for each detector nor maps offsets back.
    subject: str | bytes = text.encode("ascii") if text.isascii() else text
    try:
        hits = state.gate.Match(subject)
    except UnicodeEncodeError:  # lone surrogates: RE2 needs UTF-8 (the caller has replaced them)
        return []
    if not hits:
        return []
    raw: list[tuple[int, int, str, bool]] = []
    for index in hits:
        detector = state.detectors[index]
        for match in detector.regex.finditer(subject):
            if detector.name == "keyword":
                start, end = match.span(2)
                word = match.group(1) or ""
                keyword = word.decode("ascii") if isinstance(word, bytes) else word
            else:
                start, end = match.span()
                keyword = ""
                for group in range(1, (match.re.groups or 0) + 1):  # the captured secret, if the pattern has one
                    gs, ge = match.span(group)
                    if gs >= 0 and ge > gs:
                        start, end = gs, ge
                        break
            if end <= start:
                continue
            if detector.name == "card":
                raw.extend((a, b, "card", False) for a, b in _card_spans(text, start, end))
                continue
            if detector.check is not None and not detector.check(text, keyword, start, end):
                continue
            raw.append((start, end, detector.name, detector.widen))
    if not raw:
        return []
    raw.sort()
    spans: list[tuple[int, int, str]] = []
    covered = 0
    for start, end, kind, widen in raw:
        if widen:
            start, end = _widen(text, max(start, covered), end, covered)
        start = max(start, covered)
        if end <= start:
            continue
        if spans and start <= spans[-1][1]:
            last = spans[-1]
            spans[-1] = (last[0], max(last[1], end), last[2])
        else:
            spans.append((start, end, kind))
        covered = spans[-1][1]
    return spans


def replace_spans(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with each span replaced by ``[REDACTED:kind]`` (one pass)."""
    parts: list[str] = []
    last = 0
    for start, end, kind in spans:
        parts.append(text[last:start])
        parts.append(f"[REDACTED:{kind}]")
        last = end
    parts.append(text[last:])
    return "".join(parts)
