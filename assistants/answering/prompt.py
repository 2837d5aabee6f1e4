"""What a language model is sent: the assistant's persona, the numbered sources, the recent turns."""

from __future__ import annotations

from assistants.models import Assistant, Message
from ingestion.search.hybrid import Hit

HISTORY_MESSAGES = 6


SOURCE_CHARS = 1800  # of each source in the prompt


SYSTEM_TEMPLATE = """{persona}

Answer the visitor's question using only the numbered sources below. Cite the sources you use
inline as [1], [2] right after the sentence they support. If the sources do not contain the
answer, say that you don't know and suggest contacting the team; never invent facts, links or
prices. Answer in the language of the question.

Sources:
{sources}"""


def format_sources(hits: list[Hit]) -> str:
    blocks = []
    for number, hit in enumerate(hits, start=1):
        where = " > ".join(hit.heading_path) or hit.title  # the page title, then the section
        blocks.append(f"[{number}] {where} ({hit.link})\n{hit.text[:SOURCE_CHARS]}")
    return "\n\n".join(blocks)


def build_messages(
    assistant: Assistant, question: str, hits: list[Hit], history: list[Message], *, language: str = ""
) -> list[dict]:
    """The model's messages; ``language``: the visitor's (a name, "Italian"), to answer in."""
    system = SYSTEM_TEMPLATE.format(persona=assistant.system_prompt.strip(), sources=format_sources(hits) or "(none)")
    if language:
        system += f"\n\nThe visitor writes in {language}: answer in {language}."
    messages = [{"role": "system", "content": system}]
    for message in history[-HISTORY_MESSAGES:]:
        messages.append({"role": message.role, "content": message.text})
    messages.append({"role": "user", "content": question})
    return messages
