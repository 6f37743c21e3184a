"""The webhook egress guard: every internal address class refused, in every spelling; connections pinned."""

import asyncio
import ipaddress

import httpx
import pytest

from engine.egress import EgressGuard, EgressPolicy, EgressRefused, literal_address, pinned_client, refusal

PUBLIC = ipaddress.ip_address("93.184.215.14")

#: One address of every class the guard must refuse, with the reason it names.
INTERNAL = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("100.127.255.254", "shared (CGNAT)"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("240.0.0.1", "private"),  # reserved (Python files 240/4 under private too)
    ("fd12:3456::1", "unique-local"),
    ("fc00::1", "unique-local"),
    ("fec0::1", "site-local"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.1.2.3", "private"),
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("198.18.0.1", "private"),  # benchmarking
    ("192.0.2.1", "private"),  # documentation
]


@pytest.mark.parametrize(("address", "reason"), INTERNAL)
def test_every_internal_address_class_is_refused(address, reason):
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_pass(address):
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[::1]", "::1"),
        ("crm.example", None),
        ("cafe", None),
    ],
)
def test_numeric_spellings_are_read_as_addresses(host, expected):
    found = literal_address(host)
    assert (str(found) if found is not None else None) == expected


class FakeDns:
    """A resolver answering from a table (a name missing from it does not resolve); counts lookups."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int):
        self.lookups.append(host)
        answers = self.table.get(host)
        if answers is None:
            raise OSError(f"{host} does not resolve")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]  # successive answers, the last one sticks
        return [ipaddress.ip_address(a) for a in answer.split(",")]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://2130706433/hook",
        "https://0x7f.1/hook",
        "https://[::ffff:127.0.0.1]:5432/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/hook",
        "https://192.168.1.1/hook",
        "https://100.64.0.1/hook",
        "https://224.0.0.1/hook",
        "https://0.0.0.0/hook",
        "https://[fd00::1]/hook",
        "https://[fe80::1]/hook",
        "https://internal.example/hook",
        "https://mixed.example/hook",
        "https://nowhere.example/hook",
        "http://crm.example/hook",
        "ftp://crm.example/hook",
        "https://user:pw@crm.example/hook",
    ],
)
async def test_the_guard_refuses_urls_naming_the_field(url):
    dns = FakeDns(
        {
            "localhost": ["127.0.0.1"],
            "internal.example": ["10.1.2.3"],
            "mixed.example": ["93.184.215.14,10.1.2.3"],  # one bad answer among good ones is enough
            "crm.example": ["93.184.215.14"],
        }
    )
    with pytest.raises(EgressRefused) as refused:
        await EgressGuard(resolver=dns).check_url(url, field="$.url")
    assert refused.value.field == "$.url"


async def test_https_public_urls_pass_and_the_switches_open_what_they_say():
    dns = FakeDns({"crm.example": ["93.184.215.14"], "localhost": ["127.0.0.1"]})
    assert await EgressGuard(resolver=dns).check_url("https://crm.example/hook") == [PUBLIC]
    dev = EgressGuard(EgressPolicy(allow_http=True), resolver=dns)
    assert await dev.check_url("http://crm.example/hook") == [PUBLIC]
    with pytest.raises(EgressRefused, match="loopback"):
        await dev.check_url("http://localhost:9000/hook")  # http allowed, internal addresses still not
    local = EgressGuard(EgressPolicy(allow_http=True, allow_private=True), resolver=dns)
    assert await local.check_url("http://localhost:9000/hook") == [ipaddress.ip_address("127.0.0.1")]


@pytest.fixture
async def local_server():
    """A tiny HTTP server on 127.0.0.1 that records the Host header of each request."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        for line in head.decode().split("\r\n"):
            if line.lower().startswith("host:"):
                seen.append(line.split(":", 1)[1].strip())
        length = next(
            (int(x.split(":")[1]) for x in head.decode().split("\r\n") if x.lower().startswith("content-length")), 0
        )
        if length:
            await reader.readexactly(length)
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, seen
        server.close()


async def test_the_pinned_client_connects_to_the_checked_address_and_keeps_the_host(local_server):
    port, seen = local_server
    dns = FakeDns({"hook.test": ["127.0.0.1"]})
    guard = EgressGuard(EgressPolicy(allow_http=True, allow_private=True), resolver=dns)  # to reach the local server
    async with pinned_client(guard) as client:
        response = await client.post(f"http://hook.test:{port}/in", content=b"{}")
    assert response.status_code == 204
    assert seen == [f"hook.test:{port}"]  # the name never went to the system resolver; Host is unchanged
    assert dns.lookups == ["hook.test"]


async def test_the_pinned_client_refuses_internal_addresses_even_after_a_clean_check(local_server):
    port, seen = local_server
    # DNS rebinding: the first answer (the check) is public, the next (the connection) is loopback
    dns = FakeDns({"rebind.test": ["93.184.215.14", "127.0.0.1"]})
    guard = EgressGuard(EgressPolicy(allow_http=True), resolver=dns)
    assert await guard.check_url(f"http://rebind.test:{port}/in") == [PUBLIC]
    async with pinned_client(guard) as client:
        with pytest.raises(EgressRefused, match="loopback"):
            await client.post(f"http://rebind.test:{port}/in", content=b"{}")
        with pytest.raises(EgressRefused, match="loopback"):
            await client.post(f"http://127.0.0.1:{port}/in", content=b"{}")
    assert seen == []  # nothing reached the internal server


async def test_the_pinned_client_ignores_proxies_from_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    client = pinned_client(EgressGuard())
    assert isinstance(client, httpx.AsyncClient)
    assert client._mounts == {}  # no proxy transport would bypass the guarded connection
    await client.aclose()
