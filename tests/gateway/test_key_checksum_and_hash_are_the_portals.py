"""The key checksum and key hash the gateway computes on every request are the ones the
portal issues and stores: the CRC-32 of the random part in six base62 digits, leading
zeros included, and HMAC-SHA256 under the shared secret (after their faster rewrites)."""

import secrets
import zlib

from gateway import contract


def test_checksum_is_six_base62_digits_of_the_crc32() -> None:
    parts = ["0" * contract.KEY_RANDOM_CHARS, "z" * contract.KEY_RANDOM_CHARS]
    parts += ["".join(secrets.choice(contract.BASE62) for _ in range(contract.KEY_RANDOM_CHARS)) for _ in range(5000)]
    for part in parts:
        assert contract.key_checksum(part) == contract.base62(zlib.crc32(part.encode("ascii")), 6)


def test_the_pair_table_is_every_two_digit_base62_string() -> None:
    pairs = contract._BASE62_PAIRS
    assert len(pairs) == 62**2
    assert all(pairs[value] == contract.base62(value, 2) for value in range(62**2))


def test_a_tampered_checksum_is_refused() -> None:
    part = "".join(secrets.choice(contract.BASE62) for _ in range(contract.KEY_RANDOM_CHARS))
    checksum = contract.key_checksum(part)
    assert contract.key_is_well_formed(contract.KEY_PREFIX + part + checksum)
    wrong = "1" if checksum[-1] != "1" else "2"
    assert not contract.key_is_well_formed(contract.KEY_PREFIX + part + checksum[:-1] + wrong)


def test_the_gateways_key_hasher_is_key_hash() -> None:
    for secret in (b"", b"s", b"bench-key-hash-secret", b"x" * 200):  # 200: longer than SHA-256's block
        hasher = contract.KeyHasher(secret)
        for _ in range(50):
            key = contract.KEY_PREFIX + "".join(secrets.choice(contract.BASE62) for _ in range(38))
            assert hasher(key) == contract.key_hash(key, secret)
        assert hasher("tw_ünïcode") == contract.key_hash("tw_ünïcode", secret)
