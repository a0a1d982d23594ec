"""The source policy decides on the resolved address at connect time (issue 18 items 2-3)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.rasters import range_server
from worldbase.core import source_policy
from worldbase.core.source_policy import RefusedByPolicy, SourceNotAllowed, SourcePolicy


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    (tmp_path / "a.txt").write_text("hello")
    hits: list[str] = []
    with range_server(tmp_path, hits=hits) as base:
        yield base, hits


def test_classification() -> None:
    public = SourcePolicy()
    for text in ("8.8.8.8", "2606:4700:4700::1111"):
        assert public.address_allowed(ipaddress.ip_address(text))
    for text in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "233.252.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::",
    ):
        assert not public.address_allowed(ipaddress.ip_address(text)), text
    opened = SourcePolicy.from_entries(["10.0.0.0/8", "169.254.0.0/16"])
    assert opened.address_allowed(ipaddress.ip_address("10.1.2.3"))
    assert not opened.address_allowed(ipaddress.ip_address("169.254.169.254"))  # never
    strict = SourcePolicy.from_entries(["https://data.example.org/"], mode="allowlist")
    strict.check_url("https://data.example.org/a.tif", resolve=False)
    with pytest.raises(SourceNotAllowed):
        strict.check_url("https://8.8.8.8/a.tif")


def test_the_address_is_checked_when_connecting(loopback: tuple[str, list[str]]) -> None:
    base, hits = loopback
    port = base.rsplit(":", 1)[1]
    public = SourcePolicy()
    # A name the URL check cannot judge without resolving (as after DNS rebinding):
    public.check_url(f"http://localhost:{port}/a.txt", resolve=False)
    with source_policy.client(public) as http, pytest.raises(SourceNotAllowed):
        http.get(f"http://localhost:{port}/a.txt")
    assert hits == []
    opened = SourcePolicy.from_entries([f"http://localhost:{port}/"])
    with source_policy.client(opened) as http:
        assert http.get(f"http://localhost:{port}/a.txt").text == "hello"
    assert len(hits) == 1


def test_every_redirect_hop_is_checked(loopback: tuple[str, list[str]]) -> None:
    base, _ = loopback
    policy = SourcePolicy.from_entries([f"{base}/"])
    with source_policy.client(policy, follow_redirects=True) as http:
        assert http.get(f"{base}/redirect?to={base}/a.txt").text == "hello"
        with pytest.raises(SourceNotAllowed):
            http.get(f"{base}/redirect?to=http://169.254.169.254/latest/")
        with pytest.raises(SourceNotAllowed):
            http.get(f"{base}/redirect?to=http://localhost:{base.rsplit(':', 1)[1]}/a.txt")


def test_requests_session_for_pyosmium(loopback: tuple[str, list[str]]) -> None:
    base, _ = loopback
    session = source_policy.requests_session(SourcePolicy.from_entries([f"{base}/"]))
    with session.get(f"{base}/a.txt", timeout=5) as response:
        response.raise_for_status()
        assert response.content == b"hello"
        assert list(response.iter_lines()) == [b"hello"]
    with pytest.raises(RefusedByPolicy) as err:
        session.get(f"{base}/redirect?to=http://10.0.0.1/x", timeout=5)
    assert isinstance(err.value, requests.RequestException)
    assert err.value.refusal.status_code == 403
