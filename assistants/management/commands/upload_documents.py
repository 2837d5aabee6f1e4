"""``upload_documents ASSISTANT_SLUG FOLDER``: every file of the folder, as if uploaded on the dashboard."""

from contextlib import ExitStack
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from assistants.management.commands._lookup import assistant_for_slug
from assistants.management.commands._progress import wait_for_run
from ingestion import services


class Command(BaseCommand):
    help = "Upload the files of a folder (and its subfolders) to an assistant; --wait follows their indexing."

    def add_arguments(self, parser):
        parser.add_argument("assistant", help="The assistant's slug.")
        parser.add_argument("folder")
        parser.add_argument("--wait", action="store_true", help="Print progress until every file is indexed or failed.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between progress checks.")
        parser.add_argument("--timeout", type=float, default=3600.0, help="Stop waiting after this many seconds.")

    def handle(self, *args, assistant, folder, wait, interval, timeout, **options):
        found = assistant_for_slug(assistant)
        root = Path(folder)
        if not root.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        paths = sorted(
            path
            for path in root.rglob("*")
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
        )
        if not paths:
            raise CommandError(f"{folder} holds no files.")
        source = services.source_documents_get_or_create(assistant=found)
        with ExitStack() as stack:
            files = [File(stack.enter_context(path.open("rb")), name=path.name) for path in paths]
            run = services.documents_upload(source=source, files=files)
        self.stdout.write(f"Uploaded {len(paths)} files to source {source.pk}; run {run.pk} indexing.")
        if wait:
            wait_for_run(source=source, run=run, stdout=self.stdout, interval=interval, timeout=timeout)
