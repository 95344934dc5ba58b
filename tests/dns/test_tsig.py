from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bot.aws.clients import client
from bot.core.dns.tsig import TsigKey, load_key, parse_key
from bot.errors import ConfigError

SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.mark.parametrize(
    "text",
    [
        f'key "xfer-key" {{\n\talgorithm hmac-sha256;\n\tsecret "{SECRET}";\n}};\n',  # tsig-keygen
        f'key:\n  name: "xfer-key"\n  algorithm: hmac-sha256\n  secret: "{SECRET}"\n',  # nsd.conf
        f'{{"name": "xfer-key.", "algorithm": "HMAC-SHA256", "secret": "{SECRET}"}}',
    ],
)
def test_key_formats(text: str) -> None:
    assert parse_key(text, source="test") == TsigKey("xfer-key.", "hmac-sha256", SECRET)


def test_the_key_clause_of_a_whole_nsd_conf() -> None:
    conf = (
        'server:\n  ip-address: 127.0.0.1\n\nzone:\n  name: "before.example"\n  zonefile: a.zone\n\n'
        f'key:\n  name: "xfer-key"\n  algorithm: hmac-sha512\n  secret: "{SECRET}"\n\n'
        'zone:\n  name: "example.com"\n  provide-xfr: 10.0.0.0/8 xfer-key\n'
    )
    assert parse_key(conf, source="nsd.conf") == TsigKey("xfer-key.", "hmac-sha512", SECRET)


def test_the_secret_is_not_in_the_repr() -> None:
    assert SECRET not in repr(TsigKey("k.", "hmac-sha256", SECRET))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nothing here", "No TSIG key found"),
        ('{"name": "k"}', "No TSIG key found"),
        ('key "k" { algorithm hmac-foo; secret "c2VjcmV0"; };', "unknown algorithm"),
        ('key "k" { algorithm hmac-sha256; secret "not*base64"; };', "not valid base64"),
        ("{broken", "not valid JSON"),
    ],
)
def test_bad_keys_are_explained_without_the_secret(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_key(text, source="the file k.conf")
    assert fragment in str(caught.value)
    assert "not*base64" not in str(caught.value)


def test_load_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "key.conf"
    path.write_text(f'key "xfer" {{ algorithm hmac-sha512; secret "{SECRET}"; }};')
    assert load_key(f"file:{path}") == TsigKey("xfer.", "hmac-sha512", SECRET)
    assert load_key("") is None
    with pytest.raises(ConfigError, match=r"Cannot read the TSIG key file"):
        load_key(f"file:{tmp_path / 'missing'}")


def test_load_from_secrets_manager(aws: None) -> None:
    arn = client("secretsmanager").create_secret(
        Name="opsbot/dns/example",
        SecretString=f'{{"name": "xfer", "algorithm": "hmac-sha256", "secret": "{SECRET}"}}',
    )["ARN"]
    assert load_key("secretsmanager:opsbot/dns/example") == TsigKey("xfer.", "hmac-sha256", SECRET)
    assert load_key(arn) == TsigKey("xfer.", "hmac-sha256", SECRET)


def test_a_missing_secret_is_an_aws_error(aws: None) -> None:
    from bot.errors import AwsError

    with pytest.raises(AwsError):
        load_key("secretsmanager:nope")
