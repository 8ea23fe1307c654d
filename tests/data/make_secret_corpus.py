"""Writes secret_corpus.json: fake secrets in the real formats (run once; the JSON file is what tests read).

Each entry: ``name``; ``secret`` (what must never reach disk); and either ``key`` (an argument name that must
be redacted whatever its value) or ``text`` (free text holding the secret, under an innocent key). Values are
random (fixed seed), shaped like the real thing: prefixes, lengths, alphabets, Luhn check digits.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

rng = random.Random(13)
ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits
LOWHEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def pick(alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def luhn(prefix: str, length: int) -> str:
    body = prefix + pick(string.digits, length - len(prefix) - 1)
    for check in string.digits:
        digits = body + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch)
            if i % 2:
                d = d * 2 - 9 if d * 2 > 9 else d * 2
            total += d
        if total % 10 == 0:
            return digits
    raise AssertionError


def group(digits: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        out.append(digits[i : i + size])
        i += size
    return sep.join(out)


def jwt() -> str:
    def seg(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return (
        f"{seg({'alg': 'HS256', 'typ': 'JWT'})}.{seg({'sub': pick(string.digits, 8), 'name': 'Jo'})}."
        f"{pick(URLSAFE, 43)}"
    )


def pem(kind: str, lines: int = 6) -> str:
    body = "\n".join(pick(B64, 64) for _ in range(lines))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


def main() -> None:
    entries: list[dict[str, str]] = []

    def by_key(name: str, key: str, secret: str) -> None:
        entries.append({"name": name, "key": key, "secret": secret})

    def in_text(name: str, secret: str, text: str | None = None) -> None:
        entries.append({"name": name, "secret": secret, "text": text or f"here it is: {secret} (do not share)"})

    # --- argument names that must hide whatever value they hold
    for key in [
        "secrets",
        "passwords",
        "api_keys",
        "credential",
        "PASS",
        "private_key_pem",
        "ssh_key",
        "auth_header",
        "mfa_code",
        "db_password",
        "OPENAI_API_KEY",
        "apiKey",
        "x-api-key",
        "client_secret",
        "refresh_token",
        "accessToken",
        "session_id",
        "Cookie",
        "Authorization",
        "card_number",
        "cvv",
        "pin",
        "ssn",
        "passphrase",
        "github_token",
        "AWS_SECRET_ACCESS_KEY",
        "privateKeyPEM",
        "webhookSecret",
        "connection_string",
        "otp",
        "p\u0430ssword",
        "pass\u200bword",
        "\uff30\uff21\uff33\uff33\uff37\uff2f\uff32\uff24",
        "Pa\u0301ssword",
        "user.password",
        "SIGNING_KEY",
        "Encryption-Key",
        "bearer",
        "totp",
        "credentials",
    ]:
        by_key(f"key:{key}", key, pick(ALNUM, 12) + "x9")

    # --- values found by their format, under an innocent key
    in_text("aws-access-key", "AKIA" + pick(UPPER.replace("0", ""), 16))
    in_text("aws-sts-key", "ASIA" + pick(UPPER, 16))
    aws_secret = pick(B64, 40)
    in_text("aws-secret-assignment", aws_secret, f"aws_secret_access_key={aws_secret}")
    in_text("aws-secret-quoted", (q := pick(ALNUM, 40)), f'aws_secret_key = "{q}"')
    in_text("github-pat-classic", "ghp_" + pick(ALNUM, 36))
    in_text("github-oauth", "gho_" + pick(ALNUM, 36))
    in_text("github-fine-grained", "github_pat_" + pick(ALNUM, 22) + "_" + pick(ALNUM, 59))
    in_text("gitlab-pat", "glpat-" + pick(URLSAFE, 20))
    in_text("slack-bot", f"xoxb-{pick(string.digits, 11)}-{pick(string.digits, 13)}-{pick(ALNUM, 24)}")
    in_text(
        "slack-user",
        f"xoxp-{pick(string.digits, 11)}-{pick(string.digits, 12)}-{pick(string.digits, 13)}-{pick(LOWHEX, 32)}",
    )
    in_text("slack-webhook", f"https://hooks.slack.com/services/T{pick(UPPER, 8)}/B{pick(UPPER, 10)}/{pick(ALNUM, 24)}")
    in_text("stripe-live", "sk_live_" + pick(ALNUM, 99))
    in_text("stripe-restricted", "rk_live_" + pick(ALNUM, 24))
    in_text("stripe-test", "sk_test_" + pick(ALNUM, 24))
    in_text("openai-legacy", "sk-" + pick(ALNUM, 20) + "T3BlbkFJ" + pick(ALNUM, 20))
    in_text("openai-project", "sk-proj-" + pick(URLSAFE, 48) + "T3BlbkFJ" + pick(URLSAFE, 48))
    in_text("anthropic", "sk-ant-api03-" + pick(URLSAFE, 93) + "AA")
    in_text("google-api-key", "AIza" + pick(URLSAFE, 35))
    in_text("google-oauth-token", "ya29." + pick(URLSAFE, 60))
    creds = base64.b64encode(f"admin:{pick(ALNUM, 12)}".encode()).decode()
    in_text("basic-auth-header", creds, f"Authorization: Basic {creds}")
    pw = pick(ALNUM, 14)
    in_text("url-credentials-postgres", pw, f"connect to postgres://app:{pw}@db.internal:5432/prod")
    tok = pick(ALNUM, 20)
    in_text("url-credentials-https", tok, f"git clone https://ci-bot:{tok}@github.com/acme/repo.git")
    in_text("jwt", jwt())
    in_text("bearer-opaque", (b := pick(URLSAFE, 32)), f"curl -H 'Authorization: Bearer {b}' https://api")
    in_text("private-key-rsa", pem("RSA PRIVATE KEY"))
    in_text("private-key-openssh", pem("OPENSSH PRIVATE KEY"))
    in_text("private-key-ec", pem("EC PRIVATE KEY", 3))
    in_text("private-key-pkcs8", pem("PRIVATE KEY"))
    in_text("private-key-encrypted", pem("ENCRYPTED PRIVATE KEY"))
    in_text("private-key-pgp", pem("PGP PRIVATE KEY BLOCK"))
    visa = luhn("4", 16)
    for label, sep in [
        ("spaces", " "),
        ("dashes", "-"),
        ("dots", "."),
        ("none", ""),
        ("slashes", "/"),
        ("nbsp", "\u00a0"),
        ("underscores", "_"),
    ]:
        in_text(f"card-visa-{label}", group(visa, [4, 4, 4, 4], sep))
    in_text("card-amex", group(luhn("37", 15), [4, 6, 5], " "))
    in_text("card-mastercard", group(luhn("5", 16), [4, 4, 4, 4], "-"))
    in_text("card-19-digits", luhn("6", 19))
    in_text("ssn", f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}")
    in_text("keyword-password-equals", (p := pick(ALNUM, 10)), f"login failed for password={p}")
    in_text("keyword-token-colon", (t := pick(ALNUM, 24)), f"token: {t}")
    in_text("keyword-secret-is", (s := "tangerine-" + pick(string.digits, 4)), f"the secret is {s}")
    in_text("keyword-camel", (c := pick(ALNUM, 16)), f'{{"userPassword":"{c}"}}')
    in_text("npm-token", (n := "npm_" + pick(ALNUM, 36)), f"//registry.npmjs.org/:_authToken={n}")
    in_text("pypi-token", "pypi-AgEIcHlwaS5vcmc" + pick(URLSAFE, 80))
    in_text("sendgrid", f"SG.{pick(URLSAFE, 22)}.{pick(URLSAFE, 43)}")
    in_text("twilio-sid", "AC" + pick(LOWHEX, 32))
    in_text("twilio-key", "SK" + pick(LOWHEX, 32))
    in_text("mailchimp", pick(LOWHEX, 32) + "-us12")
    in_text("square-oauth", "sq0csp-" + pick(URLSAFE, 43))
    in_text("discord-bot", f"M{pick(URLSAFE, 23)}.{pick(URLSAFE, 6)}.{pick(URLSAFE, 27)}")
    in_text("telegram-bot", f"{pick(string.digits, 10)}:{pick(URLSAFE, 35)}")
    in_text("azure-storage", (a := pick(B64, 86) + "=="), f"AccountKey={a};EndpointSuffix=core.windows.net")
    in_text("artifactory", "AKC" + pick(ALNUM, 70), None)
    Path(__file__).with_name("secret_corpus.json").write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    print(len(entries), "entries")


if __name__ == "__main__":
    main()
