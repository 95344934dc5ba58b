"""Request ids in free text (``find_request_ids``), the error kind of a public summary, and the policy's
``shared_channels``: pure, no Slack and no AWS."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.apilogs.brief import error_kind
from bot.core.apilogs.ids import IdKind, find_request_ids, parse_request_id
from bot.security.policy import PolicyError, parse_policy
from tests.support.properties import examples

REST = "9439989f-7543-11e6-8dda-150c09a55dc2"
LAMBDA = "0f7d2c1e-4b2a-4c55-9a3f-8f2b3c4d5e6f"
EXTENDED = "Vwc2MGFUrPEFV_g="
HTTP_API = "WSg1ihmdliAEJXA="
XRAY = "1-5c7674f4-a3491d0a9c8012c191821b83"


def values(text: str, limit: int = 5) -> list[str]:
    return [r.value for r in find_request_ids(text, limit=limit).ids]


def test_every_kind_in_what_people_paste() -> None:
    text = (
        "HTTP/1.1 502 Bad Gateway\n"
        f"x-amzn-RequestId: {REST}\n"
        f"x-amz-apigw-id: {EXTENDED}\n"
        f"X-Amzn-Trace-Id: Root={XRAY};Parent=53995c3f42cd8ad8;Sampled=1\n"
        f'{{"level":"ERROR","requestId":"{LAMBDA}"}}\n'
        f"apigw-requestid={HTTP_API}"
    )
    found = find_request_ids(text)
    assert [r.value for r in found.ids] == [REST, EXTENDED, XRAY, LAMBDA, HTTP_API]
    assert [r.kind for r in found.ids] == [
        IdKind.API_REQUEST, IdKind.EXTENDED, IdKind.XRAY, IdKind.LAMBDA_REQUEST, IdKind.EXTENDED,
    ]  # fmt: skip
    assert found.left_out == ()


def test_deduplicated_in_order_and_limited() -> None:
    ids = [str(__import__("uuid").UUID(int=random.Random(i).getrandbits(128), version=4)) for i in range(7)]
    text = " ".join([ids[0], ids[0].upper(), *ids[1:]])
    found = find_request_ids(text)
    assert [r.value for r in found.ids] == ids[:5]
    assert found.left_out == tuple(ids[5:]) and found.total == 7


def test_a_uuid_in_a_url_is_a_candidate() -> None:
    assert values(f"see <https://shop.example.com/orders/{LAMBDA}?x=1|the order>") == [LAMBDA]


@pytest.mark.parametrize(
    "text",
    [
        "checkout is failing since 03:10, 5xx graph attached",
        "authorizationId= configuration= x-amz-apigw-id= apigw-requestid=",  # names, not ids
        "someVariableNme=value",  # 15 characters and '=' followed by more
        "token=QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=",  # a longer base64 value
        "abcdefghijklmno= ABCDEFGHIJKLMNOA=",  # one case only: words, not random bytes
        f"x{REST} {REST}0 sha-{XRAY}",  # glued to other characters
        "1-5c7674f4-a3491d0a9c8012c191821b8 9439989f-7543-11e6-8dda-150c09a55dc",  # a digit short
        "<@U0OPSBOT> <#C0OPS|ops> :tada:",
    ],
)
def test_words_are_not_ids(text: str) -> None:
    assert values(text) == []


def test_a_label_vouches_for_an_id_without_both_cases() -> None:
    labelled = "Extended Request Id: qwertyuiopasdfg="
    assert values(labelled) == ["qwertyuiopasdfg="]
    assert values("qwertyuiopasdfg=") == []


def test_real_extended_ids_pass() -> None:
    rng = random.Random(7)
    ids = [base64.urlsafe_b64encode(rng.randbytes(11)).decode() for _ in range(300)]
    mixed = [i for i in ids if any(c.isupper() for c in i) and any(c.islower() for c in i)]
    assert len(mixed) >= 295  # random bytes nearly always give both cases
    for value in mixed:
        assert values(f"id {value}.") == [value]


# Text built from the pieces ids are made of, and the characters around them, so that the search meets
# near-misses (cut, glued, labelled) and not only noise.
_PIECES = st.sampled_from(
    [
        REST,
        LAMBDA,
        EXTENDED,
        HTTP_API,
        XRAY,
        REST.upper(),
        "1-",
        "-",
        "=",
        "Root=",
        "x-amzn-RequestId: ",
        "Extended Request Id: ",
        "apigw-requestid=",
        "<https://x.io/",
        "|",
        ">",
        " ",
        "\n",
        "`",
        '"',
        "/",
        "9439989f",
        "-7543-11e6",
        "abcdefghijklmn",
        "Q=",
        "0123456789abcdef",
        "ÿ",
        "\u202e",
    ]
)


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=20)), max_size=30).map("".join), st.integers(0, 8))
def test_extraction_never_raises_and_returns_only_ids_the_lookup_accepts(text: str, limit: int) -> None:
    found = find_request_ids(text, limit=limit)
    assert len(found.ids) <= limit
    seen = [r.value for r in found.ids] + list(found.left_out)
    assert len(seen) == len(set(seen))  # deduplicated
    for request in found.ids:
        again = parse_request_id(request.value)  # the lookup's own classifier
        assert (again.value, again.kind) == (request.value, request.kind)
        assert request.value in text or request.value in text.lower()
    for value in found.left_out:
        parse_request_id(value)


@pytest.mark.parametrize(
    ("lines", "kind"),
    [
        (["[ERROR] KeyError: 'customer_id'\nTraceback (most recent call last):"], "KeyError"),
        (['{"errorMessage": "boom", "errorType": "Runtime.ImportModuleError"}'], "Runtime.ImportModuleError"),
        (["2024-05-01T10:15:30.120Z 0f7d2c1e Task timed out after 3.00 seconds"], "Task timed out"),
        (["(abc) Execution failed due to configuration error: Invalid permissions"], "configuration error"),
        (
            ["(abc) Execution failed due to a timeout error", "(abc) Method completed with status: 504"],
            "integration timeout",
        ),
        (["(abc) Method completed with status: 502"], ""),
    ],
)
def test_error_kind_names_the_error_without_its_text(lines: list[str], kind: str) -> None:
    assert error_kind(lines) == kind


def test_policy_shared_channels() -> None:
    policy = parse_policy('{"rules": [], "shared_channels": ["C0PARTNER"]}')
    assert policy.allows_shared("C0PARTNER") and not policy.allows_shared("C0OPS")
    assert policy.to_json()["shared_channels"] == ["C0PARTNER"]
    assert not parse_policy('{"rules": []}').allows_shared("C0OPS")
    with pytest.raises(PolicyError, match="not a Slack channel id"):
        parse_policy('{"shared_channels": ["partners"]}')
