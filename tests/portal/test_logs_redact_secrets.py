from portal.core.logging import redact


def test_it_redacts_keys_tokens_and_bearer_headers():
    key = "tw_" + "a1B2" * 8 + "Zz09Yy"
    line = f"key={key} {{'access_token': 'LKs7Fd1OZvei', 'expires_in': 3600}} Authorization: Bearer abc.def-ghi"

    cleaned = redact(line)

    assert key not in cleaned
    assert "LKs7Fd1OZvei" not in cleaned
    assert "abc.def-ghi" not in cleaned
    assert "'expires_in': 3600" in cleaned
