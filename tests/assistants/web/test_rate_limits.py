"""Rate limits on what visitors send and on sign-ins (security findings 5 and 6): per visitor, per address
and per assistant, with 429 and Retry-After; addresses come from proxy headers only behind a trusted proxy."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.hashers import make_password
from django.test import AsyncClient, Client

from tests.factories import make_assistant, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def assistant():
    return make_assistant(name="Limited Help")


class PeerClient(AsyncClient):
    """An ASGI test client whose connection comes from ``peer`` (the scope's ``client``)."""

    def __init__(self, peer: str):
        super().__init__()
        self.peer = peer

    def _base_scope(self, **request):
        return {**super()._base_scope(**request), "client": [self.peer, 0]}


def ask(slug: str, *, token: str = "", address: str = "127.0.0.1", headers: dict | None = None) -> int:
    """The status of one question to the full-page chat, its body read to the end."""

    async def run():
        client = PeerClient(address)
        if token:
            client.cookies["cs_visitor"] = token
        response = await client.post(
            f"/a/{slug}/chat",
            data=json.dumps({"question": "Hello?"}),
            content_type="application/json",
            headers=headers or {},
        )
        if response.streaming:
            [chunk async for chunk in response.streaming_content]
        return response

    return async_to_sync(run)()


def test_a_visitor_gets_429_with_retry_after_past_their_limit(assistant, settings):
    settings.CHAT_RATE_VISITOR = 3
    token = "a" * 30
    assert [ask(assistant.slug, token=token).status_code for _ in range(3)] == [200, 200, 200]
    refused = ask(assistant.slug, token=token)
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["error"] == "rate_limited"
    assert ask(assistant.slug, token="b" * 30).status_code == 200  # another visitor is not held up


def test_new_visitor_tokens_do_not_escape_the_per_address_limit(assistant, settings):
    settings.CHAT_RATE_ADDRESS = 4
    statuses = [ask(assistant.slug, token=f"{n:030d}").status_code for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    assert ask(assistant.slug, token="z" * 30, address="127.0.0.2").status_code == 200


def test_an_assistant_has_a_ceiling_over_all_its_visitors(assistant, settings):
    settings.CHAT_RATE_ASSISTANT = 2
    statuses = [ask(assistant.slug, token=f"{n:030d}", address=f"127.0.1.{n}").status_code for n in range(3)]
    assert statuses == [200, 200, 429]
    other = make_assistant(name="Other Help")
    assert ask(other.slug, token="y" * 30).status_code == 200


def test_a_forged_forwarded_for_is_ignored_without_a_trusted_proxy(assistant, settings):
    settings.CHAT_RATE_ADDRESS = 2
    statuses = [
        ask(assistant.slug, token=f"{n:030d}", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
        for n in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(assistant, settings):
    settings.CHAT_RATE_ADDRESS, settings.TRUSTED_PROXIES = 1, ["127.0.0.0/8"]
    first = [ask(assistant.slug, token=f"{n:030d}", headers={"X-Forwarded-For": "203.0.113.7"}) for n in range(2)]
    assert [response.status_code for response in first] == [200, 429]
    other = ask(assistant.slug, token="q" * 30, headers={"X-Forwarded-For": "198.51.100.9, 127.0.0.5"})
    assert other.status_code == 200  # the right-most address that is not a proxy


def test_contact_requests_are_limited_per_visitor(assistant, settings):
    settings.CONTACT_RATE_VISITOR = 2
    client = Client(HTTP_X_CHATSITE_VISITOR="c" * 30)
    url = f"/embed/{assistant.public_key}/contact"
    body = json.dumps({"name": "Ann", "email": "ann@example.com", "message": "Call me"})
    statuses = [client.post(url, body, content_type="application/json").status_code for _ in range(3)]
    assert statuses == [201, 201, 429]


def code_tries(assistant, address: str, headers: dict | None = None, count: int = 1) -> list[int]:
    client = Client(REMOTE_ADDR=address)
    return [
        client.post(f"/a/{assistant.slug}/access", {"code": "wrong-guess"}, headers=headers or {}).status_code
        for _ in range(count)
    ]


def test_access_code_guesses_are_counted_per_assistant_and_client(settings):
    first, second = make_assistant(name="Internal A"), make_assistant(name="Internal B")
    for internal in (first, second):
        internal.access_code_hash = make_password("right-code")
        internal.save()
    forged = [{"X-Forwarded-For": f"198.51.100.{n}"} for n in range(11)]
    assert [code_tries(first, "127.0.0.1", headers)[0] for headers in forged] == [403] * 10 + [429]
    assert code_tries(second, "127.0.0.1") == [403]  # another assistant is not locked
    assert code_tries(first, "127.0.0.2") == [403]  # nor another client


def test_failed_sign_ins_lock_that_account_from_that_address_only_for_a_while(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    user = make_user("victim")
    attacker = Client(REMOTE_ADDR="127.0.0.9")
    wrong = [attacker.post("/login/", {"username": "victim", "password": "nope"}).status_code for _ in range(3)]
    assert wrong == [200, 200, 200]
    locked = attacker.post("/login/", {"username": "victim", "password": "correct-horse-9"})
    assert locked.status_code == 429 and int(locked["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-ins" in locked.content.decode()
    owner = Client(REMOTE_ADDR="127.0.0.10")  # the owner, elsewhere, is not locked out
    assert owner.post("/login/", {"username": "victim", "password": "correct-horse-9"}).status_code == 302
    assert owner.get("/").status_code == 200 and user.is_active


def test_a_success_clears_the_count(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    make_user("forgetful")
    client = Client(REMOTE_ADDR="127.0.0.11")
    for _ in range(2):
        client.post("/login/", {"username": "forgetful", "password": "nope"})
    assert client.post("/login/", {"username": "forgetful", "password": "correct-horse-9"}).status_code == 302
    client.logout()
    for _ in range(2):
        assert client.post("/login/", {"username": "forgetful", "password": "nope"}).status_code == 200
    assert client.post("/login/", {"username": "forgetful", "password": "correct-horse-9"}).status_code == 302


def test_the_admin_sign_in_is_throttled_too(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 2
    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client = Client(REMOTE_ADDR="127.0.0.12")
    for _ in range(2):
        client.post("/admin/login/", {"username": "root", "password": "nope"})
    page = client.post("/admin/login/", {"username": "root", "password": "correct-horse-9", "next": "/admin/"})
    assert "Too many failed sign-ins" in page.content.decode()
    assert client.get("/admin/").status_code == 302


def test_answers_streaming_at_once_are_capped_per_visitor_and_free_again_when_done(settings, llm):
    """Back-pressure: a visitor's STREAMS_PER_VISITOR answers under way at once, then 429 with Retry-After."""
    import asyncio

    from tests.assistants.answering.providers.fake_servers import FakeServer, Reply, openai_script
    from tests.factories import index_pages

    settings.STREAMS_PER_VISITOR = 1
    assistant = make_assistant(name="Streaming Help")
    index_pages(
        assistant,
        {
            "http://docs.test/a/": "<html><body><main><h1>Plans</h1><p>The plan costs ten euros a month and includes support.</p></main></body></html>"
        },
    )
    slow = Reply(body=[1.5, *openai_script(["Ten ", "euros [1]."], 10, 3).full()])  # 1.5 s to the first token
    with FakeServer([slow]) as server:
        llm(server)

        async def ask_async(token: str) -> int:
            client = PeerClient("127.0.0.1")
            client.cookies["cs_visitor"] = token
            response = await client.post(
                f"/a/{assistant.slug}/chat",
                data=json.dumps({"question": "How much is the plan?"}),
                content_type="application/json",
            )
            if response.streaming:
                [chunk async for chunk in response.streaming_content]
            return response

        async def scenario():
            first = asyncio.create_task(ask_async("s" * 30))
            await asyncio.sleep(0.8)  # the first answer waits on the model
            second = await ask_async("s" * 30)
            other = asyncio.create_task(ask_async("t" * 30))
            return await first, second, await other

        first, second, other = async_to_sync(scenario)()
        assert first.status_code == 200 and other.status_code == 200
        assert second.status_code == 429 and int(second["Retry-After"]) >= 1 and second.json()["error"] == "busy"
        assert ask("streaming-help", token="s" * 30).status_code == 200  # the place is free again
