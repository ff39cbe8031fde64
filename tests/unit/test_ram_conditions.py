"""localcloud's RAM evaluation of a statement's Condition (localcloud/policy.py)."""

from __future__ import annotations

import json

import pytest

from localcloud.errors import ApiError
from localcloud.policy import is_allowed, parse_document

BUCKET = "acs:oss:*:*:data"


def allowing(condition: dict) -> list[dict]:
    return [{"Statement": [{"Effect": "Allow", "Action": "oss:ListObjects", "Resource": BUCKET,
                            "Condition": condition}]}]


@pytest.mark.parametrize(("condition", "context", "allowed"), [
    ({"StringLike": {"oss:Prefix": ["model/*", ""]}}, {"oss:Prefix": "model/a"}, True),
    ({"StringLike": {"oss:Prefix": ["model/*", ""]}}, {"oss:Prefix": ""}, True),
    ({"StringLike": {"oss:Prefix": ["model/*"]}}, {"oss:Prefix": "model-other/"}, False),
    ({"StringLike": {"oss:Prefix": ["model/*"]}}, {}, False),  # a key the request lacks fails the condition
    ({"StringEquals": {"oss:Prefix": [""], "oss:Delimiter": "/"}}, {"oss:Prefix": ""}, False),  # keys: AND
    ({"StringEquals": {"oss:Prefix": [""], "oss:Delimiter": "/"}}, {"oss:Prefix": "", "oss:Delimiter": "/"}, True),
    ({"StringLike": {"oss:Prefix": "a*"}, "StringNotLike": {"oss:Prefix": "ab*"}}, {"oss:Prefix": "ab"}, False),
    ({"StringLike": {"oss:Prefix": "a*"}, "StringNotLike": {"oss:Prefix": "ab*"}}, {"oss:Prefix": "ac"}, True),
    ({"StringNotEquals": {"oss:Delimiter": "/"}}, {}, True),  # a negated operator holds on a missing key
    ({"StringEqualsIgnoreCase": {"oss:Prefix": "Model/"}}, {"oss:Prefix": "model/"}, True),
    ({"Bool": {"acs:SecureTransport": "true"}}, {"acs:SecureTransport": "false"}, False),
    ({"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, {"acs:SourceIp": "10.1.1.1"}, False),  # not evaluated: no match
])
def test_a_condition_decides_whether_the_statement_applies(condition: dict, context: dict, allowed: bool) -> None:
    assert is_allowed(allowing(condition), "oss:ListObjects", BUCKET, context) is allowed


def test_a_denial_under_a_condition_that_holds_wins() -> None:
    documents = [{"Statement": [
        {"Effect": "Allow", "Action": "oss:ListObjects", "Resource": BUCKET},
        {"Effect": "Deny", "Action": "oss:ListObjects", "Resource": BUCKET,
         "Condition": {"StringLike": {"oss:Prefix": "secret/*"}}}]}]
    assert is_allowed(documents, "oss:ListObjects", BUCKET, {"oss:Prefix": "model/"})
    assert not is_allowed(documents, "oss:ListObjects", BUCKET, {"oss:Prefix": "secret/x"})


@pytest.mark.parametrize("condition", [{"StringSortOf": {"oss:Prefix": "a"}}, {"StringLike": "a"}, ["StringLike"]])
def test_a_condition_ram_would_not_take_makes_the_document_malformed(condition: object) -> None:
    text = json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*",
                                                      "Condition": condition}]})
    with pytest.raises(ApiError, match="Condition"):
        parse_document(text)
