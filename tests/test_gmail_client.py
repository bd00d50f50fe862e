"""The Gmail client's shortcuts: httplib2's URI conversion and prepared get requests."""

from __future__ import annotations

import string

import httplib2
from httplib2.iri2uri import iri2uri
from hypothesis import given
from hypothesis import strategies as st

from addon.gmail.client import (
    METADATA_HEADERS,
    THREAD_HEADERS,
    _get_request,
    _service,
    ascii_fast_iri2uri,
)

_HOST = st.from_regex(
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?(\.[A-Za-z]{2,6}){1,2}", fullmatch=True
)
_PATH = st.text(alphabet=string.ascii_letters + string.digits + "/-._~%!$&'()*+,;=:@ ", max_size=60)


@given(host=_HOST, port=st.one_of(st.none(), st.integers(1, 65535)), path=_PATH, query=_PATH)
def test_ascii_uris_convert_exactly_as_httplib2_converts_them(
    host: str, port: int | None, path: str, query: str
) -> None:
    authority = host if port is None else f"{host}:{port}"
    uri = f"https://{authority}/{path}?{query}"
    assert ascii_fast_iri2uri(uri) == iri2uri(uri)


def test_non_ascii_uris_still_take_httplib2s_conversion() -> None:
    uri = "https://bücher.example/ü?q=é"
    assert (
        ascii_fast_iri2uri(uri) == iri2uri(uri) == "https://xn--bcher-kva.example/%C3%BC?q=%C3%A9"
    )


def test_httplib2_uses_the_shortcut() -> None:
    assert httplib2.iri2uri is ascii_fast_iri2uri


@given(id_=st.text(max_size=40))
def test_prepared_get_requests_equal_what_the_discovery_method_builds(id_: str) -> None:
    api = "http://gmail.test:1"
    users = _service(api).users()
    for collection, resource, headers in (
        ("messages", users.messages(), METADATA_HEADERS),
        ("threads", users.threads(), THREAD_HEADERS),
    ):
        built = resource.get(userId="me", id=id_, format="metadata", metadataHeaders=list(headers))
        prepared = _get_request(api, collection, headers, id_)
        assert prepared.uri == built.uri
        assert prepared.method == built.method == "GET"
        assert prepared.headers == built.headers
        assert prepared.methodId == built.methodId
        assert prepared.postproc == built.postproc
