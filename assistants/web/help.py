"""The product's own help pages: what the demo assistant crawls and answers from."""

from django.http import Http404
from django.shortcuts import render

PAGES = {
    "": ("Chatsite help", "help/index.html"),
    "getting-started": ("Getting started", "help/getting-started.html"),
    "sources": ("Adding your content", "help/sources.html"),
    "chat": ("The assistant your visitors use", "help/chat.html"),
    "operations": ("Running Chatsite", "help/operations.html"),
}


def help_page(request, page: str = ""):
    if page not in PAGES:
        raise Http404("No such help page")
    title, template = PAGES[page]
    return render(request, template, {"title": title, "pages": PAGES})
