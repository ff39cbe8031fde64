"""OSS's XML documents: responses built from nested values, request bodies parsed defensively."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from email.utils import formatdate
from typing import Any

from .errors import malformed_xml

MAX_REQUEST_XML = 2 * 1024 * 1024

# A child is (tag, value): a value is text (str/int/bool), None (left out), a list of children
# (a nested element) or a list of such lists under one tag via `repeat`.
Child = tuple[str, Any]


def _fill(parent: ET.Element, children: list[Child]) -> None:
    for tag, value in children:
        if value is None:
            continue
        node = ET.SubElement(parent, tag)
        if isinstance(value, list):
            _fill(node, value)
        elif isinstance(value, bool):
            node.text = "true" if value else "false"
        else:
            node.text = str(value)


def document(root: str, children: list[Child]) -> bytes:
    node = ET.Element(root)
    _fill(node, children)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(node, encoding="utf-8")


def leaf(root: str, value: str) -> bytes:
    """A document that is one element with text (GetBucketLocation's answer)."""
    node = ET.Element(root)
    node.text = value
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(node, encoding="utf-8")


def repeat(tag: str, items: list[list[Child]]) -> list[Child]:
    """Several sibling elements of one tag (e.g. every `Contents` of a listing)."""
    return [(tag, item) for item in items]


def parse(body: bytes, root: str) -> ET.Element:
    if not body:
        raise malformed_xml("the request body is empty")
    if len(body) > MAX_REQUEST_XML:
        raise malformed_xml("the request body is too large")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise malformed_xml("document type declarations are not allowed")
    try:
        node = ET.fromstring(body)
    except ET.ParseError as exc:
        raise malformed_xml(str(exc)) from None
    if _local(node.tag) != root:
        raise malformed_xml(f"expected <{root}>, got <{_local(node.tag)}>")
    return node


def _local(tag: str) -> str:
    """S3 clients send the S3 namespace on their elements; OSS's have none."""
    return tag.rsplit("}", 1)[-1]


def children(node: ET.Element, tag: str) -> list[ET.Element]:
    return [c for c in node if _local(c.tag) == tag]


def text(node: ET.Element, tag: str, default: str = "") -> str:
    found = children(node, tag)
    return (found[0].text or "") if found else default


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def http_time(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)
