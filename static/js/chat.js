// The chat client, for the full-page assistant and for the widget's iframe (data-embed).
//
// It sends a question, reads the Server-Sent Events stream and shows the tokens as they come, as
// text only (textContent). When the answer is complete the server sends it as HTML that it has
// sanitised (assistants/answering/rendering.py): that, and nothing the model or a visitor wrote,
// is inserted as HTML. Then come the cited sources and thumbs to rate the answer.
//
// Inside the widget the client talks to the loader (static/widget.js) by postMessage, messages
// {source: "chatsite", type, ...}, only with the host page origin the loader named in ?origin=.
// A third-party iframe may get neither cookies nor storage, so the loader keeps the visitor token
// in the host page's localStorage and hands it over ("hello"); it goes in the X-Chatsite-Visitor
// header. Elsewhere (the full page, the chat opened directly) the visitor cookie does that job.
// An internal assistant's widget also gets a pass to it (data-access), sent as X-Chatsite-Access.
//
// Suggested questions (the .chip buttons) are asked when clicked, and go away with the first
// question. When an answer's "done" event says {unanswered: true}, the chat offers a person under
// that answer (which has already said it does not know: it is said once): the same contact form as
// the "Talk to a person" button. "New conversation" starts afresh (the next question opens one).
// When an answer arrives, the view keeps its beginning in sight, not the bottom of a long answer.
//
// A person of the team (the handoff, assistants/handoff/): "Talk to a person" asks for one (or the
// server hands over by itself: the visitor's words, two answers without support, a down rating with a
// comment, the team's rules; the chat stream then sends a "handoff" event). From then on the chat
// reads the conversation's live stream (Server-Sent Events over fetch, so that the visitor header is
// sent): the team's messages, shown with who wrote them, and the handoff's changes (taken, nobody
// available: the contact form is offered, resolved). Each event's id is the stream's cursor; after a
// cut the stream is read again from the last one (Last-Event-ID), and messages are kept by id, so
// nothing is lost or shown twice. The team's messages are text (textContent), never HTML.
(function () {
  "use strict";
  var parseEvents = window.ChatsiteSSE.parse;  // the SSE parser (static/js/sse.js, loaded before)
  var i18n = window.ChatsiteI18n;
  var t = i18n.t;
  var root = document.getElementById("chat");
  var log = document.getElementById("log");
  var composer = document.getElementById("composer");
  var input = document.getElementById("question");
  var send = document.getElementById("send");
  var statusLine = document.getElementById("status");
  var contact = document.getElementById("contact");
  var humanButton = root.querySelector(".header-button.human");
  var suggestions = document.getElementById("suggestions");
  var newButton = root.querySelector("[data-action='new']");
  var accessPass = root.getAttribute("data-access") || "";
  var embedded = root.hasAttribute("data-embed");
  var hostOrigin = embedded ? originParameter() : null;
  var visitorToken = "";
  var page = embedded ? { url: "", title: "" } : { url: location.href, title: document.title };
  var identity = { name: "", email: "" };
  var conversationId = null;
  var busy = false;

  i18n.translate(document);
  // The Install page's inline iframe has no loader: nothing to close, and no host page to keep the
  // visitor token (the cookie is not sent to a third-party frame), so it keeps its own when it may,
  // else one for this page view, so that follow-up questions stay in one conversation.
  if (embedded && !hostOrigin) {
    root.querySelectorAll("[data-action='close']").forEach(function (el) { el.remove(); });
    visitorToken = ownVisitorToken();
  }

  function ownVisitorToken() {
    var token = "";
    try { token = localStorage.getItem("chatsite-visitor") || ""; } catch (e) { /* storage refused */ }
    if (/^[\w-]{20,64}$/.test(token)) return token;
    var bytes = crypto.getRandomValues(new Uint8Array(24));
    token = btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_");
    try { localStorage.setItem("chatsite-visitor", token); } catch (e) { /* this page view only */ }
    return token;
  }

  function originParameter() {
    var value = new URLSearchParams(location.search).get("origin") || "";
    try { return new URL(value).origin === value ? value : null; } catch (e) { return null; }
  }

  // Resolved once the loader has said hello (or has not within 3 s: then the cookie is all there is).
  var greet;
  var greeted = new Promise(function (resolve) { greet = resolve; });
  if (hostOrigin) setTimeout(greet, 3000);
  else greet();

  function requestHeaders(extra) {
    var headers = extra || {};
    if (visitorToken) headers["X-Chatsite-Visitor"] = visitorToken;
    if (accessPass) headers["X-Chatsite-Access"] = accessPass;
    return headers;
  }

  function postJSON(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: requestHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  function clip(value, max) { return typeof value === "string" ? value.slice(0, max) : ""; }

  // --- The host page --------------------------------------------------------------------------

  function toHost(type, data) {
    if (!hostOrigin) return;
    var message = { source: "chatsite", type: type };
    Object.keys(data || {}).forEach(function (key) { message[key] = data[key]; });
    window.parent.postMessage(message, hostOrigin);
  }

  function fromHost(event) {
    var data = event.data;
    if (event.source !== window.parent || event.origin !== hostOrigin || !data || data.source !== "chatsite") return;
    if (data.type === "hello") {
      if (/^[\w-]{20,64}$/.test(data.visitor || "")) visitorToken = data.visitor;
      if (/^\d{1,18}$/.test(data.left || "")) left = data.left;
      greet();
    }
    if (data.type === "hello" || data.type === "page") page = { url: clip(data.url, 2000), title: clip(data.title, 300) };
    else if (data.type === "ask") submitQuestion(clip(data.text, 2000));
    else if (data.type === "identify") identify(clip(data.name, 200), clip(data.email, 254));
    else if (data.type === "focus") input.focus();
  }

  function identify(name, email) {
    identity = { name: name, email: email };
    if (!contact.elements.name.value) contact.elements.name.value = name;
    if (!contact.elements.email.value) contact.elements.email.value = email;
  }

  // --- Messages -------------------------------------------------------------------------------

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  // Keep the beginning of an answer in sight: follow it down until its question reaches the top of
  // the log (or a third of the log above the answer, after a long question), then stay there.
  function revealFrom(question, answer) {
    var top = Math.max(question.offsetTop, answer.offsetTop - log.clientHeight / 3) - 8;
    log.scrollTop = Math.min(Math.max(top, 0), log.scrollHeight - log.clientHeight);
  }

  function bubble(role, text) {
    var el = document.createElement("div");
    el.className = "msg " + role;
    var body = document.createElement("div");
    body.className = "text";
    body.textContent = text || "";
    el.appendChild(body);
    log.appendChild(el);
    scrollDown();
    return el;
  }

  function webUrl(url) {
    try {
      var parsed = new URL(url);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed : null;
    } catch (e) { return null; }
  }

  function sourceList(citations) {
    var box = document.createElement("div");
    box.className = "sources";
    var title = document.createElement("p");
    title.textContent = t("sources");
    var list = document.createElement("ol");
    citations.forEach(function (citation) {
      var url = webUrl(citation.url);
      if (!url) return;
      var item = document.createElement("li");
      item.value = citation.n;
      var link = document.createElement("a");
      link.href = url.href;
      link.target = "_blank";
      link.rel = "noopener noreferrer nofollow";
      link.title = t("new_tab");
      link.textContent = citation.title + (citation.section ? " — " + citation.section : "");
      var domain = document.createElement("span");
      domain.className = "domain";
      domain.textContent = url.hostname;
      item.appendChild(link);
      item.appendChild(domain);
      list.appendChild(item);
    });
    box.appendChild(title);
    box.appendChild(list);
    return box;
  }

  // The finished answer: the server's sanitised HTML replaces the streamed text.
  function showAnswer(el, html, citations) {
    var body = el.querySelector(".text");
    body.innerHTML = html;
    body.classList.add("rich");
    if (citations && citations.length) el.appendChild(sourceList(citations));
  }

  function showError(kind) {
    var key = { rate_limited: "error_rate_limited", network: "error_network" }[kind] || "error_unavailable";
    var el = bubble("assistant error", t(key));
    el.setAttribute("data-kind", kind);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "human";
    button.textContent = t("human");
    button.addEventListener("click", requestPerson);
    el.appendChild(button);
  }

  // Under an answer the content could not support (which says so itself): offer a person.
  function offerHandoff(answer) {
    var el = document.createElement("div");
    el.className = "handoff-offer";
    var text = document.createElement("p");
    text.textContent = t("handoff_offer");
    var button = document.createElement("button");
    button.type = "button";
    button.className = "human";
    button.textContent = t("human");
    button.addEventListener("click", requestPerson);
    el.appendChild(text);
    el.appendChild(button);
    answer.insertBefore(el, answer.querySelector(".feedback"));  // before the thumbs, right under the words
  }

  function hideSuggestions() { if (suggestions) suggestions.hidden = true; }

  function started() { if (newButton) newButton.hidden = false; }

  // --- A new conversation ---------------------------------------------------------------------
  // The next question opens a new conversation. Until then a reload would resume the old one, so
  // the old one's id is remembered: by the loader in the host page's storage inside the widget (the
  // third-party iframe may be refused storage; it says "hello" with it), else in this page's.

  var LEFT_KEY = "chatsite-left:" + root.dataset.resume;
  var left = "";

  function rememberLeft(id) {
    left = id ? String(id) : "";
    if (hostOrigin) { toHost("left", { id: left }); return; }
    try { localStorage.setItem(LEFT_KEY, left); } catch (e) { /* then a reload resumes the old one */ }
  }

  if (!hostOrigin) {
    try { left = localStorage.getItem(LEFT_KEY) || ""; } catch (e) { /* as above */ }
  }

  function newConversation() {
    if (busy) return;
    stopLive();
    handoff = { state: "bot", cursor: "", agent: "" };  // the new conversation is the assistant's
    if (humanButton) humanButton.hidden = false;
    rememberLeft(conversationId);
    conversationId = null;
    log.querySelectorAll(".msg:not(.greeting)").forEach(function (el) { el.remove(); });
    closeContact();
    if (suggestions) suggestions.hidden = false;
    if (newButton) newButton.hidden = true;
    statusLine.textContent = t("new_conversation_started");
    log.scrollTop = 0;
    input.focus();
  }

  // --- Rating answers ---------------------------------------------------------------------------

  function thumbIcon(down) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M2 10h4v11H2zM8 21h9.5a2 2 0 0 0 2-1.6l1.4-7A2 2 0 0 0 19 10h-5l1-4.5A2 2 0 0 0 13 3l-5 7z");
    if (down) path.setAttribute("transform", "rotate(180 12 12)");
    svg.appendChild(path);
    return svg;
  }

  function feedbackControls(el, messageId, rating) {
    var box = document.createElement("div");
    box.className = "feedback";
    [[1, "helpful"], [-1, "not_helpful"]].forEach(function (spec) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "thumb";
      button.appendChild(thumbIcon(spec[0] < 0));
      button.title = t(spec[1]);
      button.setAttribute("aria-label", t(spec[1]));
      button.setAttribute("aria-pressed", String(rating === spec[0]));
      button.setAttribute("data-rating", spec[0]);
      button.addEventListener("click", function () { rate(box, messageId, spec[0]); });
      box.appendChild(button);
    });
    el.appendChild(box);
  }

  function note(box, text) {
    var old = box.querySelector(".note");
    if (old) old.remove();
    var p = document.createElement("p");
    p.className = "note";
    p.setAttribute("role", "status");
    p.textContent = text;
    box.appendChild(p);
  }

  function rate(box, messageId, rating) {
    postJSON(root.dataset.feedback, { message_id: messageId, rating: rating, comment: "" }).then(function () {
      box.querySelectorAll(".thumb").forEach(function (button) {
        button.setAttribute("aria-pressed", String(Number(button.getAttribute("data-rating")) === rating));
      });
      commentForm(box, messageId, rating);
    }).catch(function () { note(box, t("feedback_failed")); });
  }

  // An optional comment after a rating; sending it stores the rating again, with the comment.
  function commentForm(box, messageId, rating) {
    var old = box.querySelector("form");
    if (old) old.remove();
    var form = document.createElement("form");
    form.className = "comment";
    var field = document.createElement("input");
    field.maxLength = 2000;
    field.placeholder = t("comment");
    field.setAttribute("aria-label", t("comment"));
    var button = document.createElement("button");
    button.type = "submit";
    button.textContent = t("send_comment");
    form.appendChild(field);
    form.appendChild(button);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      postJSON(root.dataset.feedback, { message_id: messageId, rating: rating, comment: field.value }).then(function (data) {
        form.remove();
        note(box, t("feedback_thanks"));
        if (data.handoff) followHandoff(data.handoff, true);
        input.focus();
      }).catch(function () { note(box, t("feedback_failed")); });
    });
    box.appendChild(form);
    form.scrollIntoView({ block: "nearest" });
  }

  // --- Contact details for a person -------------------------------------------------------------

  // What other scripts of the page (static/js/lead.js) follow: "chatsite:answered" after each answer,
  // "chatsite:handoff" when the visitor asks for a person; with what they need to call the server.
  function announce(name) {
    root.dispatchEvent(new CustomEvent("chatsite:" + name, {
      detail: { conversationId: conversationId, headers: requestHeaders(), pageUrl: page.url, scrollDown: scrollDown }
    }));
  }

  function openContact() {
    announce("handoff");
    toHost("handoff", { conversation_id: conversationId });
    contact.hidden = false;
    identify(identity.name, identity.email);
    (contact.elements.name.value ? contact.elements.email : contact.elements.name).focus();
  }

  function closeContact() {
    contact.hidden = true;
    contact.querySelector(".problem").textContent = "";
    input.focus();
  }

  contact.addEventListener("submit", function (event) {
    event.preventDefault();
    var email = contact.elements.email.value.trim();
    postJSON(root.dataset.contact, {
      conversation_id: conversationId,
      name: contact.elements.name.value.trim(),
      email: email,
      message: contact.elements.message.value.trim(),
      page_url: page.url
    }).then(function (data) {
      conversationId = data.conversation_id;
      contact.elements.message.value = "";
      closeContact();
      bubble("assistant notice", t("contact_thanks", { email: email }));
    }).catch(function () { contact.querySelector(".problem").textContent = t("contact_failed"); });
  });

  // --- A person of the team (live handoff) ----------------------------------------------------

  var handoff = { state: "bot", cursor: "", agent: "" };
  var live = null;  // the AbortController of the live stream being read
  var seenAgentMessages = {};

  function agentStatus() { return handoff.agent ? t("handoff_replying", { agent: handoff.agent }) : ""; }

  function notice(text, withEmail) {
    var el = bubble("assistant notice handoff-notice", text);
    if (withEmail) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "human";
      button.textContent = t("leave_email");
      button.addEventListener("click", openContact);
      el.appendChild(button);
    }
    return el;
  }

  function agentBubble(message) {
    if (seenAgentMessages[message.id]) return null;
    seenAgentMessages[message.id] = true;
    var el = bubble("agent", message.text);
    var who = document.createElement("div");
    who.className = "who";
    who.textContent = message.label || message.author || t("team_member");
    el.insertBefore(who, el.firstChild);
    el.setAttribute("data-message-id", message.id);
    return el;
  }

  function requestPerson() {
    hideSuggestions();
    // After the resumed conversation is known (it would otherwise replace the one this request opens).
    resumed.then(function () {
      return postJSON(root.dataset.handoff, { conversation_id: conversationId, page_url: page.url });
    }).then(function (state) {
      if (state.enabled === false) { openContact(); return; }
      toHost("handoff", { conversation_id: state.conversation_id });
      started();
      followHandoff(state, true);
    }).catch(function () { openContact(); });
  }

  // The handoff's state from the server (the chat stream, a request, the resumed conversation);
  // ``announce``: say what changed (a resumed conversation shows only its status).
  function followHandoff(state, announce) {
    if (state.conversation_id) conversationId = state.conversation_id;
    var before = handoff.state;
    // A chat already following the handoff keeps its own cursor (its live stream's); one that was not
    // (a member took the conversation over) starts where the server says.
    var following = (before === "pending" || before === "open") && handoff.cursor;
    handoff = { state: state.state, cursor: following ? handoff.cursor : (state.cursor || handoff.cursor), agent: state.agent || "" };
    var active = state.state === "pending" || state.state === "open";
    if (humanButton) humanButton.hidden = active;
    if (!active) { stopLive(); return; }
    if (announce && before !== state.state) {
      if (state.state === "pending") notice(state.unavailable ? t("handoff_unavailable") : t("handoff_waiting"), state.unavailable);
      else if (state.agent) notice(t("handoff_joined", { agent: state.agent }));
    } else if (!announce && state.unavailable && state.state === "pending") {
      notice(t("handoff_unavailable"), true);
    }
    statusLine.textContent = agentStatus();
    if (!live) readLive(1000);
  }

  // --- Typing: "Dana from Acme is typing…" while a member writes (their signals come every ~2 s;
  // the note goes 4 s after the last, or with their message), and the visitor's own typing is
  // sent to the team at most every TYPING_EVERY ms while a person has the conversation.

  var TYPING_SHOWN = 4000, TYPING_EVERY = 2000;
  var agentTyping = null, agentTypingTimer = null, lastTypingSent = 0;

  function hideAgentTyping() {
    clearTimeout(agentTypingTimer);
    if (agentTyping) { agentTyping.remove(); agentTyping = null; }
    if (handoff.state === "open" && !busy) statusLine.textContent = agentStatus();
  }

  function showAgentTyping(label) {
    var who = label || handoff.agent || t("team_member");
    if (!agentTyping) {
      agentTyping = document.createElement("div");
      agentTyping.className = "msg agent agent-typing";
      var name = document.createElement("div");
      name.className = "who";
      agentTyping.appendChild(name);
      agentTyping.appendChild(typingIndicator());
      log.appendChild(agentTyping);
      scrollDown();
    }
    agentTyping.querySelector(".who").textContent = who;
    if (!busy) statusLine.textContent = t("handoff_typing", { agent: who });
    clearTimeout(agentTypingTimer);
    agentTypingTimer = setTimeout(hideAgentTyping, TYPING_SHOWN);
  }

  function visitorTyping() {
    var now = Date.now();
    if (handoff.state !== "open" || !conversationId || !input.value.trim() || now - lastTypingSent < TYPING_EVERY) return;
    lastTypingSent = now;
    postJSON(root.dataset.typing, { conversation_id: conversationId }).catch(function () { /* only a courtesy */ });
  }

  function onLive(name, data) {
    if (name === "typing") { if (data.who === "agent") showAgentTyping(data.label); return; }
    if (name === "message") { hideAgentTyping(); agentBubble(data); scrollDown(); return; }
    if (name !== "handoff") return;
    if (data.kind === "unavailable") { notice(t("handoff_unavailable"), true); return; }
    if (data.state === "open" && data.agent && data.agent !== handoff.agent) {
      handoff.agent = data.agent;
      notice(t("handoff_joined", { agent: data.agent }));
    }
    handoff.state = data.state;
    statusLine.textContent = agentStatus();
    if (data.state === "resolved" || data.state === "bot") {
      if (data.state === "resolved") notice(t("handoff_resolved"));
      handoff.agent = "";
      statusLine.textContent = "";
      if (humanButton) humanButton.hidden = false;
      stopLive();
    }
  }

  function stopLive() {
    if (live) { live.abort(); live = null; }
  }

  // Read the live stream until the handoff ends; after a cut, again from the last event id.
  function readLive(delay) {
    var controller = new AbortController();
    live = controller;
    var headers = requestHeaders({ "Accept": "text/event-stream" });
    if (handoff.cursor) headers["Last-Event-ID"] = handoff.cursor;
    var url = root.dataset.live + "?conversation_id=" + encodeURIComponent(conversationId);
    fetch(url, { credentials: "same-origin", headers: headers, signal: controller.signal }).then(function (response) {
      if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
      delay = 1000;
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffer = parseEvents(buffer + decoder.decode(chunk.value, { stream: true }), function (name, data, id) {
            if (id) handoff.cursor = id;
            onLive(name, data);
          });
          return pump();
        });
      }
      return pump();
    }).catch(function () { /* cut: read again below */ }).then(function () {
      if (live !== controller) return;  // stopped, or replaced
      live = null;
      if (handoff.state !== "pending" && handoff.state !== "open") return;
      setTimeout(function () { if (!live) readLive(Math.min(delay * 2, 15000)); }, delay);
    });
  }

  // --- Asking ---------------------------------------------------------------------------------

  function readEvents(stream, onEvent) {
    var reader = stream.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer = parseEvents(buffer + decoder.decode(chunk.value, { stream: true }), onEvent);
        return pump();
      });
    }
    return pump();
  }

  function typingIndicator() {
    var dots = document.createElement("span");
    dots.className = "typing";
    dots.setAttribute("aria-hidden", "true");
    dots.appendChild(document.createElement("i"));
    dots.appendChild(document.createElement("i"));
    dots.appendChild(document.createElement("i"));
    return dots;
  }

  function ask(question) {
    busy = true;
    send.disabled = true;
    hideSuggestions();
    started();
    statusLine.textContent = "";
    var asked = bubble("user", question);
    var answer = bubble("assistant", "");
    var body = answer.querySelector(".text");
    var text = "";
    if (handoff.state === "pending" || handoff.state === "open") answer.hidden = true;  // the team answers
    body.appendChild(typingIndicator());
    statusLine.textContent = handoff.state === "open" ? agentStatus() : t("typing");
    log.setAttribute("aria-busy", "true");

    function onEvent(name, data) {
      if (name === "meta") conversationId = data.conversation_id;
      else if (name === "token") { text += data.text; body.textContent = text; statusLine.textContent = ""; }
      else if (name === "citations") showAnswer(answer, data.html, data.citations);
      else if (name === "error") showError(data.kind);
      else if (name === "handoff") followHandoff(data, true);
      else if (name === "done") {
        if (data.held) { statusLine.textContent = ""; return; }
        if (text) feedbackControls(answer, data.message_id, null);
        if (data.unanswered === true && text) offerHandoff(answer);
        if (left) rememberLeft(null);
      }
      revealFrom(asked, answer);
    }

    // A busy assistant (429) is asked again after its Retry-After, a few times, saying so meanwhile.
    function post(retriesLeft) {
      return fetch(root.dataset.endpoint, {
        method: "POST",
        credentials: "same-origin",
        headers: requestHeaders({ "Content-Type": "application/json", "Accept": "text/event-stream" }),
        body: JSON.stringify({ question: question, conversation_id: conversationId, page_url: page.url, page_title: page.title })
      }).then(function (response) {
        if (response.status === 429) {
          if (!retriesLeft) { showError("rate_limited"); return; }
          var wait = Math.min(Math.max(parseInt(response.headers.get("Retry-After"), 10) || 2, 1), 30);
          statusLine.textContent = t("busy_retrying");
          return new Promise(function (resolve) { setTimeout(resolve, wait * 1000); }).then(function () {
            return post(retriesLeft - 1);
          });
        }
        if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
        return readEvents(response.body, onEvent);
      });
    }

    post(3).catch(function () {
      showError("network");
    }).then(function () {
      if (!text) answer.remove();
      else revealFrom(asked, answer);
      busy = false;
      send.disabled = false;
      statusLine.textContent = handoff.state === "open" ? agentStatus() : "";
      log.removeAttribute("aria-busy");
      input.focus();
      if (text) announce("answered");
    });
  }

  // Resume the visitor's conversation; questions wait for it so that they come after its messages.
  var resumed = greeted
    .then(function () {
      // A return link (the email to a visitor who left) names its conversation.
      var chosen = root.dataset.resumeConversation;
      var url = root.dataset.resume + (chosen ? "?conversation_id=" + encodeURIComponent(chosen) : "");
      return fetch(url, { credentials: "same-origin", headers: requestHeaders() });
    })
    .then(function (response) { return response.ok ? response.json() : { messages: [] }; })
    .then(function (data) {
      var chosen = root.dataset.resumeConversation;
      if (left && String(data.conversation_id) === left && String(data.conversation_id) !== chosen) return;  // the visitor started a new one
      conversationId = data.conversation_id;
      if (data.messages.length) { hideSuggestions(); started(); }
      var lastQuestion = null, lastAnswer = null;
      data.messages.forEach(function (message) {
        if (message.role === "agent") { agentBubble(message); return; }
        var el = bubble(message.role, message.text);
        if (message.role === "user") { lastQuestion = el; lastAnswer = null; }
        if (message.role !== "assistant" || !message.text) return;
        lastAnswer = el;
        showAnswer(el, message.html, message.citations);
        feedbackControls(el, message.id, message.rating);
      });
      if (lastQuestion && lastAnswer) revealFrom(lastQuestion, lastAnswer);
      if (data.handoff) followHandoff(data.handoff, false);
    })
    .catch(function () { /* a fresh conversation then */ });

  function submitQuestion(question) {
    question = question.trim();
    if (!question) return;
    if (busy) { input.value = question; return; }
    busy = true;
    input.value = "";
    resumed.then(function () { ask(question); });
  }

  // --- Keyboard and buttons -------------------------------------------------------------------

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    submitQuestion(input.value);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  input.addEventListener("input", visitorTyping);
  root.addEventListener("click", function (event) {
    var action = event.target.closest("[data-action]");
    if (!action) return;
    var name = action.getAttribute("data-action");
    if (name === "contact") requestPerson();
    else if (name === "new") newConversation();
    else if (name === "cancel-contact") closeContact();
    else if (name === "close") toHost("close");
    else if (name === "suggest") submitQuestion(action.getAttribute("data-question") || "");
  });

  // In the widget: Esc closes it, and Tab cycles within the panel.
  function focusables() {
    return Array.prototype.filter.call(
      root.querySelectorAll("a[href], button:not([disabled]), input, textarea, [tabindex]:not([tabindex='-1'])"),
      function (el) { return el.getClientRects().length > 0; }
    );
  }
  if (embedded) {
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { toHost("close"); return; }
      if (event.key !== "Tab") return;
      var items = focusables();
      var first = items[0], last = items[items.length - 1];
      if (event.shiftKey ? document.activeElement === first : document.activeElement === last) {
        event.preventDefault();
        (event.shiftKey ? last : first).focus();
      }
    });
    window.addEventListener("message", fromHost);
    toHost("ready", { color: root.dataset.brand, on_color: root.dataset.onBrand, position: root.dataset.position, icon: root.dataset.icon, title: document.title, labels: { open: t("open"), close: t("close") } });
  }

  // Ready: the Send button, disabled in the page until now (a form sent without this script would
  // only reload the page), and a mark that scripts and tests can wait for.
  send.disabled = false;
  root.setAttribute("data-ready", "");
})();
