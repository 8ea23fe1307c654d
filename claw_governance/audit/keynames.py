"""Which mapping keys name a secret: ``password``, ``db_password``, ``passwords``, ``PASS``, ``apiKeys``,
``OPENAI_API_KEY``, ``private_key_pem``, ``ssh_key``, ``auth_header``, ``mfa_code``, ``x-api-key`` ...

A key is normalised first (NFKC, invisible and control characters dropped, look-alike letters mapped to
their Latin skeleton, case folded), then split into words at separators and case changes
(``privateKeyPEM`` -> ``private key pem``). It is sensitive when

- its joined form (``privatekeypem``) *contains* a long, unambiguous secret word (``password``,
  ``apikey``, ``privatekey``, ``credential``, ``authheader`` ...): prefix, suffix and plural forms alike;
- or one of its words *is* a short secret word (``pass``, ``pwd``, ``pin``, ``otp``, ``mfa``, ``auth``,
  ``ssn``, ``cvv``...), or *ends* with ``secret(s)`` or ``token(s)`` (``clientsecrets``, ``githubtoken``).

Not sensitive, on purpose (tests/test_secrets.py lists them): ``passenger``, ``compass``, ``bypass``,
``author``, ``authority``, ``secretary``, ``tokenizer``, ``keyboard``, ``monkey``, ``key`` alone (a cache
or dictionary key), ``session`` and ``session_status`` (``session_id``, ``session_token`` and
``session_key`` are sensitive), and token *counts*: a key whose words say it counts tokens (``max_tokens``,
``tokens_used``, ``token_count``, ``input_tokens``, ``prompt_tokens`` ...) is LLM usage, not a credential.
Their values still go through the value detectors, so ``max_tokens: "ghp_..."`` is still caught.
"""

from __future__ import annotations

import re
import unicodedata

# Contained anywhere in the joined form.
CONTAINED = (
    "password",
    "passwd",
    "passphrase",
    "credential",
    "apikey",
    "apisecret",
    "privatekey",
    "secretkey",
    "accesskey",
    "sshkey",
    "signingkey",
    "encryptionkey",
    "masterkey",
    "authheader",
    "authtoken",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "sessiontoken",
    "sessionid",
    "sessionkey",
    "authorization",
    "cookie",
    "bearer",
    "creditcard",
    "cardnumber",
    "ccnumber",
    "securitycode",
    "socialsecurity",
    "mfacode",
    "otpcode",
    "totp",
    "recoverycode",
    "backupcode",
    "clientsecret",
    "webhooksecret",
    "connectionstring",
)
# A whole word.
WORDS = frozenset(
    {
        "pass",
        "pwd",
        "pw",
        "passcode",
        "pin",
        "otp",
        "mfa",
        "auth",
        "ssn",
        "cvv",
        "cvc",
        "cvv2",
        "cvn",
        "cred",
        "creds",
        "secret",
        "secrets",
        "token",
        "tokens",
        "jwt",
        "pat",
        "oauth",
        "dsn",
    }
)
# A word that ends with one of these (glued words: "clientsecrets", "githubtoken", "dbpwd").
ENDINGS = ("secret", "secrets", "token", "tokens", "passwd", "pwd")
# Words that turn a "token" key into a count of LLM tokens.
COUNTING = frozenset(
    {
        "max",
        "min",
        "num",
        "count",
        "counts",
        "used",
        "total",
        "limit",
        "limits",
        "input",
        "output",
        "prompt",
        "completion",
        "completions",
        "usage",
        "remaining",
        "budget",
        "per",
        "estimated",
        "estimate",
        "cached",
        "reasoning",
        "context",
        "length",
        "size",
        "left",
    }
)

# Look-alike letters an attacker may put into a key name to slip past the list (Cyrillic, Greek, Armenian
# and a few symbols that NFKC leaves alone). The skeletons of UTS #39 for these letters; the governor's
# name checks use the full confusables table (policy/), a key only needs to reach the Latin word.
_CONFUSABLES = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ԛ": "q",
        "ԝ": "w",
        "һ": "h",
        "к": "k",
        "м": "m",
        "т": "t",
        "в": "b",
        "н": "h",
        "г": "r",
        "А": "A",
        "В": "B",
        "Е": "E",
        "К": "K",
        "М": "M",
        "Н": "H",
        "О": "O",
        "Р": "P",
        "С": "C",
        "Т": "T",
        "Х": "X",
        "І": "I",
        "Ј": "J",
        "Ѕ": "S",
        "Ү": "Y",
        "ο": "o",
        "α": "a",
        "ν": "v",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "κ": "k",
        "ι": "i",
        "Α": "A",
        "Β": "B",
        "Ε": "E",
        "Ζ": "Z",
        "Η": "H",
        "Ι": "I",
        "Κ": "K",
        "Μ": "M",
        "Ν": "N",
        "Ο": "O",
        "Ρ": "P",
        "Τ": "T",
        "Υ": "Y",
        "Χ": "X",
        "ı": "i",
        "ɑ": "a",
        "ɡ": "g",
        "օ": "o",
        "ս": "u",
        "ց": "g",
        "ℓ": "l",
        "∣": "l",
        "ǀ": "l",
        "＿": "_",
        "‐": "-",
        "‑": "-",
        "–": "-",
        "—": "-",
    }
)
_SPLIT = re.compile(r"[^a-z0-9]+")  # linear: one negated class
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")  # zero-width, fixed look-around


def skeleton(name: str) -> str:
    """NFKD, drop marks and control/format/unassigned characters, map look-alikes to Latin (case kept)."""
    if name.isascii():
        return name
    # NFKD splits accents off (dropped with the other marks); NFKC would keep "pässword" whole.
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cn", "Co", "Cs", "Mn", "Me"))
    return unicodedata.normalize("NFKC", text.translate(_CONFUSABLES))


def words(name: str) -> list[str]:
    """The lower-case words of a key: ``OPENAI_API_KEY`` and ``openaiApiKey`` -> ``openai api key``."""
    text = _CAMEL.sub(" ", skeleton(name))
    return [w for w in _SPLIT.split(text.casefold()) if w]


def is_sensitive_name(name: str) -> bool:
    """True if a key name names a secret (see the module docstring for the rules)."""
    parts = words(name)
    if not parts:
        return False
    joined = "".join(parts)
    if any(word in joined for word in CONTAINED):
        return True
    counting = any(p in COUNTING for p in parts)
    for part in parts:
        if part in WORDS or part.endswith(ENDINGS):
            if counting and (part.startswith("token") or part.endswith(("token", "tokens"))):
                continue  # "max_tokens", "tokens_used": a count of LLM tokens
            if (
                part.endswith(("token", "tokens"))
                and part not in ("token", "tokens")
                and part.removesuffix("s").removesuffix("token") in COUNTING
            ):
                continue  # glued counts: "maxtokens", "inputtokens"
            return True
    return False


def key_form(name: str) -> str:
    """The form in which ``sensitive_fields`` names are compared: words joined, lower case."""
    return "".join(words(name))
