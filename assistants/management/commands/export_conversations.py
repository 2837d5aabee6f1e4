"""``export_conversations ASSISTANT_SLUG --format jsonl|csv [--out FILE]``: the API's export, offline."""

from django.core.management.base import BaseCommand, CommandError

from assistants.api.export import FORMATS, export_lines, parse_bound
from assistants.api.selectors import conversation_export_rows
from assistants.management.commands._lookup import assistant_for_slug


class Command(BaseCommand):
    help = "Write every message of an assistant's conversations as JSONL or CSV (to stdout or --out)."

    def add_arguments(self, parser):
        parser.add_argument("assistant")
        parser.add_argument("--format", choices=sorted(FORMATS), default="jsonl")
        parser.add_argument("--out", help="A file to write; stdout by default.")
        parser.add_argument("--since", help="Only messages created at or after this ISO 8601 date-time.")
        parser.add_argument("--until", help="Only messages created before this ISO 8601 date-time.")

    def handle(self, *args, assistant, format, out, since, until, **options):
        try:
            bounds = {"since": parse_bound(since), "until": parse_bound(until)}
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        rows = conversation_export_rows(assistant=assistant_for_slug(assistant), **bounds)
        lines = export_lines(rows, format)
        if out is None:
            for line in lines:
                self.stdout.write(line, ending="")
            return
        count = 0
        with open(out, "w", encoding="utf-8", newline="") as file:
            for line in lines:
                file.write(line)
                count += 1
        messages = count - 1 if format == "csv" else count
        self.stderr.write(f"Wrote {messages} messages to {out}.")
