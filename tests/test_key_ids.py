"""One public-key type and one key-id rule for every key (``claw_governance.keys``), checked against OpenSSL,
and the reader that still accepts the ids written before the rule.

``tests/data/legacy-key-ids`` is a real trail written by the code before the rule (``generate.py`` there, run
on commit b8535bc): its trail.json, checkpoint records, retention record and signed checkpoint all name the
governor's key by the old id (SHA-256 of the raw key, 16 hex digits).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import jwt
import orjson
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from claw_governance import Governor
from claw_governance.audit.keys import public_key_from_text
from claw_governance.audit.layout import list_segments
from claw_governance.audit.verify import verify_directory
from claw_governance.cli import build_cli
from claw_governance.errors import AuditError
from claw_governance.identity import keys as K
from claw_governance.keys import KeyFormatError, PublicKey, by_alias, key_id, legacy_key_id

LEGACY = Path(__file__).parent / "data" / "legacy-key-ids"
LEGACY_ID = "8cd9646489ad2ce3"  # what the old code printed for the fixture's key


def openssl_key_id(pem: bytes) -> str:
    """The key id recomputed by OpenSSL, not by this project: SHA-256 of the DER SubjectPublicKeyInfo."""
    der = subprocess.run(
        ["openssl", "pkey", "-pubout", "-outform", "DER", *(["-pubin"] if b"PUBLIC" in pem else [])],
        input=pem,
        capture_output=True,
        check=True,
    ).stdout
    return hashlib.sha256(der).hexdigest()[:32]


def legacy_copy(tmp_path: Path) -> tuple[Path, PublicKey]:
    root = tmp_path / "legacy"
    shutil.copytree(LEGACY, root)
    state = root / "identities" / ".state"
    state.mkdir(parents=True)
    shutil.copy(root / "governor_ed25519.pem", state / "governor_ed25519.pem")
    (state / "governor_ed25519.pem").chmod(0o600)
    return root, public_key_from_text((root / "governor_ed25519.pem").read_bytes())


# ------------------------------------------------------------------------------------------- the rule


def test_every_key_the_governor_writes_is_named_by_the_rule_openssl_recomputes(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "bot.yaml").write_text("agent: bot\npermissions:\n  allow: ['read:*']\n")
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with Governor(policies, tmp_path / "audit", tmp_path / "identities", load_entry_points=False) as gov:
        gov.identities.create("rsa-bot", private_key=K.import_private_key(rsa_pem))
        job = gov.start_job("j-1", agent_id="bot", scope=["read:*"])
        assert gov.agent("bot", job_token=job.token).execute("read:x", {}, lambda ctx: "ok").output == "ok"
        gov.audit.checkpoint()
        governor_pem = gov.audit.key.public.pem()
        agent_pem = gov.identities.load_private_key("bot").key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        records = {a: gov.identities.require(a).key_id for a in ("bot", "rsa-bot")}
    governor_id = openssl_key_id(governor_pem)
    assert records == {"bot": openssl_key_id(agent_pem), "rsa-bot": openssl_key_id(rsa_pem)}
    assert jwt.get_unverified_header(job.token)["kid"] == governor_id
    meta = orjson.loads((tmp_path / "audit" / "trail.json").read_bytes())
    assert [k["key_id"] for k in meta["keys"]] == [governor_id]
    assert orjson.loads((tmp_path / "audit" / "checkpoint.json").read_bytes())["key_id"] == governor_id
    written = {
        entry["details"]["key_id"]
        for _, segment in list_segments(tmp_path / "audit")
        for entry in map(orjson.loads, segment.read_bytes().splitlines())
        if entry["type"] == "checkpoint"
    }
    assert written == {governor_id}


def test_one_public_key_type_holds_ed25519_and_rsa_keys() -> None:
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_public = PublicKey.from_crypto(ed.public_key())
    assert ed_public == PublicKey.from_raw(ed_public.raw) == PublicKey.from_text(ed_public.pem())
    assert ed_public == PublicKey.from_text(ed_public.hex) == PublicKey.from_der(ed_public.der)
    assert ed_public.aliases == (key_id(ed_public.der), legacy_key_id(ed_public.raw))
    assert ed_public.verify(ed.sign(b"m"), b"m") and not ed_public.verify(ed.sign(b"m"), b"n")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_public = PublicKey.from_crypto(rsa_key.public_key())
    assert rsa_public.algorithm == "rsa" and rsa_public.aliases == (rsa_public.key_id,)
    assert rsa_public.verify(K.sign(rsa_key, b"m"), b"m") and not rsa_public.verify(K.sign(rsa_key, b"m"), b"n")
    with pytest.raises(ValueError):
        rsa_public.raw  # noqa: B018 - an RSA key has no raw Ed25519 form
    with pytest.raises(AuditError, match="Ed25519"):
        public_key_from_text(rsa_public.pem())  # audit checkpoints are Ed25519 signed notes
    for junk in (b"", b"00" * 31, b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"):
        with pytest.raises(KeyFormatError):
            PublicKey.from_text(junk)
    with pytest.raises(KeyFormatError):
        PublicKey.from_der(b"\x30\x03\x02\x01\x01")


# ------------------------------------------------------------------------------ ids written before the rule


def test_the_fixture_really_uses_the_old_ids() -> None:
    key = public_key_from_text((LEGACY / "governor_ed25519.pem").read_bytes())
    assert legacy_key_id(key.raw) == LEGACY_ID != key.key_id
    meta = orjson.loads((LEGACY / "audit" / "trail.json").read_bytes())
    assert [k["key_id"] for k in meta["keys"]] == [LEGACY_ID]
    retention = orjson.loads((LEGACY / "audit" / "retention.jsonl").read_bytes().splitlines()[0])
    assert retention["key_id"] == LEGACY_ID
    ids = set(re.findall(rb'"key_id":"([0-9a-f]+)"', b"".join(p.read_bytes() for p in (LEGACY / "audit").iterdir())))
    assert ids == {LEGACY_ID.encode()}


def test_a_trail_written_under_the_old_ids_verifies_with_its_key_and_only_with_it(tmp_path: Path) -> None:
    root, key = legacy_copy(tmp_path)
    report = verify_directory(root / "audit", trusted_keys=[key])
    assert report.valid, report.errors
    assert report.first_seq == 212  # 30 segments were removed under the old-id retention record
    other = PublicKey.from_crypto(ed25519.Ed25519PrivateKey.generate().public_key())
    assert not verify_directory(root / "audit", trusted_keys=[other]).valid
    segment = list_segments(root / "audit")[0][1]
    data = bytearray(segment.read_bytes())
    data[data.index(b"delete:invoice") + 13] ^= 1  # one letter of the first kept entry's action
    segment.write_bytes(bytes(data))
    assert not verify_directory(root / "audit", trusted_keys=[key]).valid


def test_a_governor_continues_an_old_trail_under_the_new_id_and_the_cli_verifies_both(tmp_path: Path) -> None:
    root, key = legacy_copy(tmp_path)
    with Governor(root / "policies", root / "audit", root / "identities", load_entry_points=False) as gov:
        assert gov.audit.key.public == key
        agent = gov.agent("billing-agent")
        for n in range(5):
            agent.execute("read:invoice", {"n": n}, lambda ctx: "ok")
        assert agent.check("delete:invoice").outcome.value == "deny"
        gov.audit.checkpoint()
    meta = orjson.loads((root / "audit" / "trail.json").read_bytes())
    assert [k["key_id"] for k in meta["keys"]] == [LEGACY_ID]  # the same key, not listed twice
    assert orjson.loads((root / "audit" / "checkpoint.json").read_bytes())["key_id"] == key.key_id
    assert verify_directory(root / "audit", trusted_keys=[key]).valid
    result = CliRunner().invoke(
        build_cli(),
        ["audit", "verify", "--audit", str(root / "audit"), "--public-key", str(root / "governor_ed25519.pem")],
    )
    assert result.exit_code == 0, result.output
    assert "VALID" in result.output


def test_a_job_token_under_the_old_kid_still_works_and_an_unknown_kid_does_not(tmp_path: Path) -> None:
    root, key = legacy_copy(tmp_path)
    with Governor(root / "policies", root / "audit", root / "identities", load_entry_points=False) as gov:
        job = gov.start_job("legacy-job-2", agent_id="billing-agent", scope=["read:*"])
        payload = jwt.decode(job.token, options={"verify_signature": False})
        private = gov.audit.key.private_key()

        def resigned(kid: str) -> str:
            return jwt.encode(payload, private, algorithm="EdDSA", headers={"kid": kid, "typ": "JWT"})

        assert jwt.get_unverified_header(job.token)["kid"] == key.key_id
        old = gov.agent("billing-agent", job_token=resigned(LEGACY_ID))
        assert old.execute("read:invoice", {}, lambda ctx: "ok").output == "ok"
        stranger = ed25519.Ed25519PrivateKey.generate()
        stranger_id = PublicKey.from_crypto(stranger.public_key()).key_id
        forged = jwt.encode(payload, stranger, algorithm="EdDSA", headers={"kid": stranger_id, "typ": "JWT"})
        denied = gov.agent("billing-agent", job_token=forged).check("read:invoice")
        assert denied.outcome.value == "deny" and "does not trust" in denied.reason
        # an old kid naming the governor's key does not make another key's signature good
        wrong_signer = jwt.encode(payload, stranger, algorithm="EdDSA", headers={"kid": LEGACY_ID, "typ": "JWT"})
        assert gov.agent("billing-agent", job_token=wrong_signer).check("read:invoice").outcome.value == "deny"


def test_lookup_by_alias_finds_a_key_under_either_id() -> None:
    keys = [PublicKey.from_crypto(ed25519.Ed25519PrivateKey.generate().public_key()) for _ in range(3)]
    found = by_alias(keys)
    assert len(found) == 6
    for key in keys:
        assert found[key.key_id] is key and found[legacy_key_id(key.raw)] is key


# ------------------------------------------------------------------------------ red-team findings (fixed)


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 128 else (b"\x81" + bytes([n]) if n < 256 else b"\x82" + n.to_bytes(2, "big"))
    return bytes([tag]) + length + body


def test_one_rsa_key_has_one_id_whatever_der_it_came_in() -> None:
    key = PublicKey.from_crypto(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())
    inner = key.der[4:]  # after SEQUENCE + 0x82 length
    bit_string = inner[2 + inner[1] :]
    for algorithm in (
        _tlv(0x30, _tlv(0x06, bytes.fromhex("2a864886f70d010101"))),  # rsaEncryption, NULL parameters left out
        _tlv(0x30, _tlv(0x06, bytes.fromhex("2a864886f70d01010a"))),  # the RSASSA-PSS OID
    ):
        variant = PublicKey.from_der(_tlv(0x30, algorithm + bit_string))
        assert variant.der == key.der and variant.key_id == key.key_id and variant == key


def test_an_rsa_key_among_the_trusted_keys_never_crashes_verification(tmp_path: Path) -> None:
    root, governor = legacy_copy(tmp_path)
    stranger = PublicKey.from_crypto(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())
    assert not verify_directory(root / "audit", trusted_keys=[stranger]).valid  # was: ValueError
    assert verify_directory(root / "audit", trusted_keys=[stranger, governor]).valid  # order no longer matters
    assert verify_directory(root / "audit", trusted_keys=[governor, stranger]).valid


def test_trail_json_whose_keys_are_not_a_list_is_a_one_line_error(tmp_path: Path) -> None:
    root, key = legacy_copy(tmp_path)
    meta_path = root / "audit" / "trail.json"
    meta_path.write_bytes(orjson.dumps({**orjson.loads(meta_path.read_bytes()), "keys": 5}))
    report = verify_directory(root / "audit", trusted_keys=[key])
    assert not report.valid and "'keys' must be a list" in report.errors[0]["message"]
    result = CliRunner().invoke(
        build_cli(),
        ["audit", "report", "--audit", str(root / "audit"), "--from", "2026-01-01", "--to", "2027-12-31"],
    )
    assert result.exit_code == 2 and "'keys' must be a list" in result.output, result.output  # was: exit 3


@pytest.mark.parametrize("contents", ["itself", "", "   \n"])
def test_a_public_key_file_that_is_no_key_is_a_one_line_error(tmp_path: Path, contents: str) -> None:
    root, _ = legacy_copy(tmp_path)
    path = tmp_path / "key.pem"
    path.write_text(str(path) if contents == "itself" else contents)  # a file naming itself recursed before
    result = CliRunner().invoke(
        build_cli(), ["audit", "verify", "--audit", str(root / "audit"), "--public-key", str(path)]
    )
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "not a public key" in result.output and "Traceback" not in result.output


def test_a_public_key_path_of_64_characters_is_read_as_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = legacy_copy(tmp_path)
    monkeypatch.chdir(tmp_path)
    name = "governor-key-" + "x" * 47 + ".pem"
    assert len(name) == 64  # before: any 64-character value was taken for 64 hex digits
    (tmp_path / name).write_bytes((root / "governor_ed25519.pem").read_bytes())
    result = CliRunner().invoke(build_cli(), ["audit", "verify", "--audit", str(root / "audit"), "--public-key", name])
    assert result.exit_code == 0 and "VALID" in result.output, result.output
