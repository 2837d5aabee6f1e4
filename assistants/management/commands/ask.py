"""``ask ASSISTANT_SLUG "question"``: the answer as the chat streams it, then its numbered sources."""

import asyncio

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from assistants import services
from assistants.answering.pipeline import answer_events
from assistants.management.commands._lookup import assistant_for_slug

VISITOR_TOKEN = "cli"  # the conversations this command starts, and only those, it can continue


class Command(BaseCommand):
    help = "Ask an assistant a question; prints the answer as it streams, then the citations."

    def add_arguments(self, parser):
        parser.add_argument("assistant")
        parser.add_argument("question")
        parser.add_argument("--conversation", type=int, help="Continue a conversation this command started.")

    def handle(self, *args, assistant, question, conversation, **options):
        if not question.strip():
            raise CommandError("The question is empty.")
        found = assistant_for_slug(assistant)
        turn = services.conversation_for_visitor(
            assistant=found, visitor_token=VISITOR_TOKEN, conversation_id=conversation
        )
        error = asyncio.run(self._answer(found, turn, question.strip()))
        if error:
            raise CommandError(f"The answer failed ({error['kind']}): {error['message']}")

    async def _answer(self, assistant, conversation, question) -> dict | None:
        """Write each event as it comes; the error event, if any, is returned."""
        error = None
        async for event in answer_events(assistant=assistant, conversation=conversation, question=question):
            if event.name == "token":
                self.stdout.write(event.data["text"], ending="")
                self.stdout.flush()
            elif event.name == "citations":
                self.stdout.write("\n")
                for citation in event.data["citations"]:
                    section = f" > {citation['section']}" if citation.get("section") else ""
                    self.stdout.write(f"[{citation['n']}] {citation['title']}{section}: {citation['url']}")
            elif event.name == "error":
                error = event.data
            elif event.name == "done":
                self.stdout.write(f"\n(conversation {conversation.pk})")
        # answer_events reads and writes from sync_to_async's thread: close the connection it opened there.
        await sync_to_async(connections.close_all)()
        return error
