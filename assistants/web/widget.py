"""The embeddable widget: the loader script, the chat page it frames, and what a visitor may send.

A website adds ``<script src="https://HOST/widget.js" data-assistant="PUBLIC_KEY" async></script>``;
the loader asks ``/embed/<public_key>/allowed`` whether the page's origin is one of the assistant's
allowed domains, and only then shows its launcher, which opens ``/embed/<public_key>/`` in an iframe,
so the host page's CSS and scripts cannot reach the chat. The public key allows chatting, rating
answers and leaving contact details, nothing else. The real enforcement is the CSP: only the
assistant's allowed domains may frame the chat (``frame-ancestors``).

Inside a third-party iframe the browser may withhold the visitor cookie, so the embedded chat keeps
its visitor token in localStorage and sends it in the ``X-Chatsite-Visitor`` header.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import FileResponse, Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from assistants import selectors, services
from assistants.answering.rendering import render_answer
from assistants.domains import allowed as domain_rules
from assistants.handoff import selectors as handoff_selectors
from assistants.handoff import services as handoff_services
from assistants.models import Assistant, Conversation, Feedback, Message
from assistants.web import visitors
from assistants.web.handoff import visitor_state

WIDGET_CACHE_SECONDS = 300
MAX_COMMENT_CHARS = 2000


def allowed_sources(domains: list) -> list[str]:
    """CSP sources for the assistant's allowed domains ("example.com", "*.example.com",
    "localhost:8080"); anything else is ignored, so a stored value can never add a directive."""
    sources = []
    for domain in domain_rules.stored_domains(domains):
        sources += [f"https://{domain}", f"http://{domain}"]
    return sources


def embed_csp(assistant: Assistant, *, form_action: bool = False) -> str:
    """The embedded chat's Content-Security-Policy (see :func:`chat_csp`), framed by the allowed domains."""
    return chat_csp(assistant, form_action=form_action)


def chat_csp(assistant: Assistant, *, form_action: bool = False, framed_by_allowed_domains: bool = True) -> str:
    """A chat page's Content-Security-Policy: its own scripts only; images also from the origins of the
    assistant's avatar and logo; framed by the allowed domains (the widget) or by nobody (the full page).
    ``form_action``: the access-code page posts its form to the platform."""
    domains = allowed_sources(assistant.allowed_domains)
    images = selectors.image_origins(branding=selectors.assistant_branding(assistant=assistant))
    static = urlsplit(settings.STATIC_URL)
    static_origin = [f"{static.scheme}://{static.netloc}"] if static.scheme and static.netloc else []
    directives = {
        "default-src": ["'none'"],
        "script-src": ["'self'", *static_origin],
        "style-src": ["'self'", "'unsafe-inline'", *static_origin],  # the brand colours are inline
        "img-src": ["'self'", *domains, *[origin for origin in images if origin not in domains]],
        "connect-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"] if form_action else ["'none'"],
        "frame-ancestors": ["'self'", *domains] if framed_by_allowed_domains else ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


@require_GET
def widget_js(request):
    """The loader script that websites include; cached briefly so that updates reach them soon."""
    path = finders.find("widget.js")
    if path is None:
        raise Http404("widget.js missing")
    response = FileResponse(open(path, "rb"), content_type="application/javascript")
    response["Cache-Control"] = f"public, max-age={WIDGET_CACHE_SECONDS}"
    return response


@require_GET
def embed_allowed(request, public_key: str):
    """Whether the page asking may show the widget: ``{"allowed": true, "brand": {...}}`` (the launcher's
    look) or ``{"allowed": false, "add": "<the entry that would allow it>"}``; it never tells the list.

    The origin is the browser's ``Origin`` header (a page's script cannot change it), else ``?origin=``
    (browsers send no Origin on a same-origin GET). Only a cross-origin page allowed by its header
    counts as the widget being installed (``Assistant.widget_seen_at``)."""
    assistant = Assistant.objects.filter(public_key=public_key).first()
    header = request.headers.get("Origin", "")
    origin = (header or request.GET.get("origin", ""))[:300]
    own = origin == f"{request.scheme}://{request.get_host()}"
    if assistant is None:
        response = JsonResponse({"allowed": False, "error": "unknown assistant"}, status=404)
    elif own or domain_rules.origin_allowed(origin, assistant.allowed_domains):
        if header and not own:
            services.widget_seen_record(assistant=assistant, origin=origin)
        brand = selectors.assistant_branding(assistant=assistant)
        response = JsonResponse(
            {
                "allowed": True,
                "brand": {
                    "color": brand["primary_color"],
                    "on_color": brand["on_primary"],
                    "position": brand["launcher_position"],
                    "icon": brand["launcher_icon"],
                },
            }
        )
    else:
        response = JsonResponse({"allowed": False, "add": domain_rules.suggestion_for(origin)})
    response["Access-Control-Allow-Origin"] = "*"  # any page may ask; no cookie is read or set
    response["Cache-Control"] = "no-store"
    response["Vary"] = "Origin"
    return response


@xframe_options_exempt  # framing is governed by the CSP's frame-ancestors instead
@require_GET
def embed_page(request, public_key: str):
    assistant = get_object_or_404(Assistant, public_key=public_key)
    if not visitors.access_granted(request, assistant):
        return _embed_access_form(request, assistant)
    return _embed_chat(request, assistant)


def _embed_chat(request, assistant: Assistant, access: str = ""):
    """The embedded chat; ``access``, an internal assistant's pass, goes to the chat client in the page,
    which sends it with every request (X-Chatsite-Access) — never in an address, where logs would keep it."""
    context = visitors.chat_context(assistant, embed=True, access=access)
    response = render(request, "chat/page.html", context)
    response["Content-Security-Policy"] = embed_csp(assistant)
    response["Cache-Control"] = "no-store"
    return response


def _embed_access_form(request, assistant: Assistant, error: str = "", status: int = 403):
    action = reverse("embed_unlock", args=[assistant.public_key])
    origin = request.GET.get("origin", "")
    if origin:
        action += "?" + urlencode({"origin": origin[:300]})
    response = visitors.access_form(request, assistant=assistant, action=action, error=error, status=status, embed=True)
    response["Content-Security-Policy"] = embed_csp(assistant, form_action=True)
    return response


@xframe_options_exempt
@csrf_exempt  # see chat.access_unlock
@require_POST
def embed_unlock(request, public_key: str):
    """A correct code answers with the embedded chat itself, its pass inside the page (cookies may be
    withheld inside a third-party iframe, and an address would put the pass in access logs)."""
    assistant = get_object_or_404(Assistant, public_key=public_key)
    granted, error, status = visitors.access_check_code(request, assistant)
    if not granted:
        return _embed_access_form(request, assistant, error=error, status=status)
    return _embed_chat(request, assistant, access=visitors.access_pass(assistant))


def _rating(message: Message) -> int | None:
    ratings = [f.rating for f in message.feedback.all() if f.kind == Feedback.Kind.RATING]
    return ratings[0] if ratings else None


@require_GET
def embed_conversation(request, public_key: str):
    """The visitor's latest conversation, with each answer's id (to rate it) and sanitised HTML, the team's
    messages (``agent``, by ``label``: "Dana from Acme") and the handoff's state (``handoff``)."""
    assistant = get_object_or_404(Assistant, public_key=public_key)
    if not visitors.access_granted(request, assistant):
        return visitors.access_refused()
    token = visitors.visitor_token(request)
    conversation = None
    chosen = request.GET.get("conversation_id", "")
    if token and chosen.isdigit():  # the one a return link opened, when it is this visitor's
        conversation = Conversation.objects.filter(pk=int(chosen), assistant=assistant, visitor_token=token).first()
    if conversation is None:
        conversation = selectors.conversation_latest_for_visitor(assistant=assistant, visitor_token=token)
    if conversation is None:
        return JsonResponse({"conversation_id": None, "messages": []})
    messages = []
    for message in conversation.messages.prefetch_related("feedback").select_related("author"):
        item = {"id": message.pk, "role": message.role, "text": message.text, "citations": message.citations}
        if message.role == Message.Role.ASSISTANT:
            item["html"] = render_answer(message.text, message.citations, assistant.allowed_domains)
            item["rating"] = _rating(message)
        elif message.role == Message.Role.AGENT:
            item["label"] = handoff_selectors.agent_label(message.author, assistant.team)
        messages.append(item)
    return JsonResponse(
        {"conversation_id": conversation.pk, "messages": messages, "handoff": visitor_state(conversation)}
    )


@visitors.anonymous_json_post
def embed_feedback(request, assistant: Assistant, payload: dict):
    """Rate one of the visitor's answers: ``{message_id, rating: 1 | -1, comment}``; rating again updates."""
    rating = payload.get("rating")
    message_id = str(payload.get("message_id") or "")
    if rating not in (1, -1) or isinstance(rating, bool) or not message_id.isdigit():
        return HttpResponseBadRequest("message_id and a rating of 1 or -1 expected")
    token = visitors.visitor_token(request)
    message = (
        Message.objects.select_related("conversation__assistant")
        .filter(
            pk=int(message_id),
            role=Message.Role.ASSISTANT,
            conversation__assistant=assistant,
            conversation__visitor_token=token,
        )
        .first()
        if token
        else None
    )
    if message is None:
        return JsonResponse({"error": "no such answer in your conversation"}, status=404)
    feedback = services.answer_rate(
        message=message, rating=int(rating), comment=str(payload.get("comment") or "").strip()[:MAX_COMMENT_CHARS]
    )
    # Rated down with a comment: a person of the team takes a look (the chat follows the handoff).
    handoff = handoff_services.after_feedback(feedback=feedback)
    answer = {"message_id": message.pk, "rating": rating}
    if handoff is not None:
        answer["handoff"] = visitor_state(message.conversation)
    return JsonResponse(answer)


@visitors.anonymous_json_post
def embed_contact(request, assistant: Assistant, payload: dict):
    """Store the visitor's contact details on their conversation, for a person to follow up:
    ``{conversation_id, name, email, message, page_url}``."""
    token = visitors.visitor_token(request)
    if not token:
        return JsonResponse({"error": "visitor unknown"}, status=403)
    refused = visitors.rate_limited(request, assistant, "contact")
    if refused is not None:
        return refused
    email = str(payload.get("email") or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        return JsonResponse({"error": "a valid email address is required"}, status=400)
    conversation_id = str(payload.get("conversation_id") or "")
    page_url = str(payload.get("page_url") or "")[:2000]
    conversation = services.conversation_for_visitor(
        assistant=assistant,
        visitor_token=token,
        conversation_id=int(conversation_id) if conversation_id.isdigit() else None,
        page_url=page_url,
    )
    details = {
        "name": str(payload.get("name") or "").strip()[:200],
        "email": email[:254],
        "message": str(payload.get("message") or "").strip()[:MAX_COMMENT_CHARS],
        "page_url": page_url,
    }
    Feedback.objects.create(conversation=conversation, kind=Feedback.Kind.CONTACT, details=details)
    return JsonResponse({"conversation_id": conversation.pk}, status=201)
