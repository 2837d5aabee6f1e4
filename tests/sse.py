"""Read a chat answer the way a browser does: POST the question, parse the Server-Sent Events."""

import json

from asgiref.sync import async_to_sync
from django.test import AsyncClient


def parse_sse(body: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in body.decode().split("\n\n"):
        name, data = "message", ""
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        if data:
            events.append((name, json.loads(data)))
    return events


def ask(slug: str, question: str, conversation_id: int | None = None, client: AsyncClient | None = None):
    """The events of one answer from the full-page assistant's streaming endpoint."""
    client = client or AsyncClient()

    async def run():
        response = await client.post(
            f"/a/{slug}/chat",
            data=json.dumps({"question": question, "conversation_id": conversation_id}),
            content_type="application/json",
        )
        assert response.status_code == 200, response.status_code
        assert response["Content-Type"] == "text/event-stream"
        chunks = [chunk async for chunk in response.streaming_content]
        return chunks

    chunks = async_to_sync(run)()
    return parse_sse(b"".join(chunks)), len(chunks)


def answer_text(events) -> str:
    return "".join(data["text"] for name, data in events if name == "token")


def citations(events) -> list[dict]:
    return next((data["citations"] for name, data in events if name == "citations"), [])
