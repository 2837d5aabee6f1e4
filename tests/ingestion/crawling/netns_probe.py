"""Renders the hostile page inside a network namespace where internal addresses are really served.

test_rendering_isolation.py runs this module as ``unshare --user --map-root-user --net -- python -m
tests.ingestion.crawling.netns_probe``: a namespace of its own, with only a loopback interface, on
which this process puts 169.254.169.254 (the cloud metadata address) and 10.77.0.1, and starts a
sentinel for every vector there (the metadata one on port 80, answering the classic
``http://169.254.169.254/latest/meta-data/``). A control connection from Python to every TCP sentinel
proves it is reachable; then the page is rendered, and one JSON object goes to stdout:

    {"control": {vector: hits}, "hits": {vector: hits}, "allowed": [...], "reports": {...},
     "rendered_text": bool}

Nothing here can reach outside the namespace: it has no interface but ``lo``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

METADATA = "169.254.169.254"
PRIVATE = "10.77.0.1"


def setup_namespace() -> None:
    for command in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "addr", "add", f"{METADATA}/32", "dev", "lo"],
        ["ip", "addr", "add", f"{PRIVATE}/32", "dev", "lo"],
    ):
        subprocess.run(command, check=True, timeout=10)


def main() -> int:
    # Refuse to add addresses to the machine's own interfaces: a new namespace has nothing but lo.
    if "--in-namespace" not in sys.argv or [name for _, name in socket.if_nameindex()] != ["lo"]:
        print("run inside a new network namespace (only lo), with --in-namespace", file=sys.stderr)
        return 2
    setup_namespace()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.test_settings")
    import django

    django.setup()
    from django.conf import settings

    from ingestion.crawling.browser import PageRenderer
    from tests.ingestion.crawling.hostile import (
        TEXT,
        VECTORS,
        Sentinel,
        close_all,
        hostile_site_pages,
        vector_reports,
    )
    from tests.ingestion.crawling.test_crawler import Site

    # Half the vectors aim at the metadata address, half at the private one; the popup at
    # http://169.254.169.254/latest/meta-data/ on port 80, the URL an attacker would write.
    sentinels = {
        name: Sentinel(METADATA if index % 2 == 0 else PRIVATE, 80 if name == "popup" else 0, kind=kind)
        for index, (name, (kind, _)) in enumerate(VECTORS.items())
    }
    allowed = Sentinel(PRIVATE)
    targets = {name: sentinel.target for name, sentinel in sentinels.items()}
    targets["popup"] = f"http://{METADATA}"
    site = Site(hostile_site_pages(targets, allowed=allowed.target))

    control = {}
    for sentinel in sentinels.values():
        if sentinel.kind != "udp":
            with socket.create_connection((sentinel.host, sentinel.port), timeout=2) as conn:
                conn.sendall(b"CONTROL\r\n")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(s.kind != "udp" and not s.hits for s in sentinels.values()):
        time.sleep(0.05)
    for name, sentinel in sentinels.items():
        control[name] = list(sentinel.hits)
        sentinel.hits.clear()

    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_HOSTS = [site.host, allowed.address]
    with PageRenderer(timeout=10) as renderer:
        html = renderer.render(site.url + "/", site.pages["/"][2])
    time.sleep(0.5)  # connections already on their way when the browser closed
    print(
        json.dumps(
            {
                "control": control,
                "hits": {name: sentinel.hits for name, sentinel in sentinels.items()},
                "allowed": allowed.hits,
                "reports": vector_reports(html),
                "rendered_text": TEXT.strip() in html,
            }
        )
    )
    site.server.shutdown()
    close_all([*sentinels.values(), allowed])
    return 0


if __name__ == "__main__":
    sys.exit(main())
