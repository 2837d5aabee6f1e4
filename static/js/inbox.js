// The team's live inbox (templates/dashboard/inbox.html).
//
// It reads the team's stream (Server-Sent Events over fetch, assistants/handoff/live.py): "handoff"
// events carry a conversation's card (the list is updated: a new one appears at the top, a resolved
// one goes), "message" events a visitor's or a member's message (added to the open thread, and the
// card's preview). Each event's id is the stream's cursor: after a cut the stream is read again from
// the last id (Last-Event-ID), so nothing is lost or shown twice; messages are also kept by id.
// Replies are posted with fetch (CSRF token) and appear through the stream. Everything a visitor or
// a member wrote is inserted with textContent.
(function () {
  "use strict";
  var parse = window.ChatsiteSSE.parse;  // the SSE parser (static/js/sse.js, loaded before)
  var root = document.getElementById("inbox");
  if (!root) return;
  var list = document.getElementById("inbox-list");
  var empty = document.getElementById("inbox-empty");
  var count = document.getElementById("inbox-count");
  var status = document.getElementById("live-status");
  var thread = document.getElementById("thread");
  var reply = document.getElementById("reply");
  var selected = root.dataset.selected;
  var cursor = root.dataset.cursor || "";
  var seen = {};
  if (thread) thread.querySelectorAll("[data-id]").forEach(function (el) { seen[el.dataset.id] = true; });

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clock(iso) {
    var date = new Date(iso);
    return isNaN(date) ? "" : String(date.getHours()).padStart(2, "0") + ":" + String(date.getMinutes()).padStart(2, "0");
  }

  function cardItem(card) {
    var item = el("li", "inbox-item");
    item.dataset.id = card.id;
    item.dataset.state = card.state;
    if (String(card.id) === selected) item.classList.add("current");
    var link = el("a");
    link.href = "?c=" + encodeURIComponent(card.id);
    if (String(card.id) === selected) link.setAttribute("aria-current", "true");
    var top = el("span", "inbox-top");
    top.appendChild(el("span", "flag state-" + card.state, card.state_label));
    top.appendChild(el("span", "inbox-reason", card.reason_label));
    var time = el("time", "muted", clock(card.updated_at));
    time.dateTime = card.updated_at;
    top.appendChild(time);
    var who = el("span", "inbox-who", (card.contact && (card.contact.name || card.contact.email)) || "Visitor " + card.id);
    who.appendChild(el("span", "muted", " · " + card.assistant));
    link.appendChild(top);
    link.appendChild(who);
    link.appendChild(el("span", "inbox-preview", card.last_message || card.summary));
    link.appendChild(el("span", "inbox-assignee muted", card.assigned_to ? "With " + card.assigned_to : "Waiting for someone"));
    item.appendChild(link);
    return item;
  }

  function findCard(id) { return list.querySelector(".inbox-item[data-id='" + String(Number(id)) + "']"); }

  function refreshCount() {
    var n = list.querySelectorAll(".inbox-item").length;
    count.textContent = String(n);
    empty.hidden = n > 0;
  }

  function onHandoff(data) {
    var card = data.card;
    var old = findCard(data.conversation_id);
    if (card.state === "pending" || card.state === "open") {
      var item = cardItem(card);
      if (old) old.remove();
      list.insertBefore(item, list.firstChild);
      if (!old && String(card.id) !== selected) item.classList.add("fresh");
    } else if (old) {
      old.remove();
    }
    refreshCount();
    if (String(data.conversation_id) === selected) updateThread(card);
  }

  function updateThread(card) {
    var state = document.getElementById("thread-state");
    var assignee = document.getElementById("thread-assignee");
    if (state) { state.className = "flag state-" + card.state; state.textContent = card.state_label; }
    var active = card.state === "pending" || card.state === "open";
    if (assignee) assignee.textContent = active ? (card.assigned_to ? "With " + card.assigned_to : "Waiting for someone") : "";
    var assign = root.querySelector("[data-action='assign']");
    if (assign && String(card.assigned_to_id) === root.dataset.me) assign.closest("form").hidden = true;
    if (!active) {
      root.querySelectorAll(".thread-head form, #reply").forEach(function (node) { node.hidden = true; });
    }
  }

  function onMessage(data) {
    var item = findCard(data.conversation_id);
    if (item) {
      var preview = item.querySelector(".inbox-preview");
      if (preview) preview.textContent = data.text;
      list.insertBefore(item, list.firstChild);
      if (String(data.conversation_id) !== selected && data.role === "user") item.classList.add("fresh");
    }
    if (String(data.conversation_id) !== selected || !thread || seen[data.id]) return;
    seen[data.id] = true;
    var line = el("li", "tmsg " + data.role);
    line.dataset.id = data.id;
    var who = el("span", "who", data.role === "user" ? "Visitor" : data.author || "Team");
    var time = el("time", "muted", clock(data.created_at));
    time.dateTime = data.created_at;
    who.appendChild(time);
    line.appendChild(who);
    line.appendChild(el("span", "text", data.text));
    thread.appendChild(line);
    thread.scrollTop = thread.scrollHeight;
  }

  // --- Typing ------------------------------------------------------------------------------------
  // The visitor typing in the open conversation shows under its thread for a few seconds (refreshed
  // while the signals come, gone with their message); the member typing a reply tells the visitor,
  // at most every TYPING_EVERY ms (the server throttles too).

  var TYPING_SHOWN = 4000, TYPING_EVERY = 2000;
  var typingNote = document.getElementById("visitor-typing");
  var typingTimer = null;

  function visitorTyping(show) {
    if (!typingNote) return;
    typingNote.hidden = !show;
    clearTimeout(typingTimer);
    if (show) typingTimer = setTimeout(function () { typingNote.hidden = true; }, TYPING_SHOWN);
  }

  function onTyping(data) {
    if (data.who === "visitor" && String(data.conversation_id) === selected) visitorTyping(true);
  }

  // --- The stream ---------------------------------------------------------------------------------

  function connect(delay) {
    var headers = { "Accept": "text/event-stream" };
    if (cursor) headers["Last-Event-ID"] = cursor;
    fetch(root.dataset.stream, { credentials: "same-origin", headers: headers }).then(function (response) {
      if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
      status.textContent = "Live";
      status.classList.add("on");
      delay = 1000;
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffer = parse(buffer + decoder.decode(chunk.value, { stream: true }), function (name, data, id) {
            if (name === "handoff") onHandoff(data);
            else if (name === "message") { onMessage(data); if (data.role === "user" && String(data.conversation_id) === selected) visitorTyping(false); }
            else if (name === "typing") onTyping(data);
            if (id) cursor = id;
          });
          return pump();
        });
      }
      return pump();
    }).catch(function () { /* reconnect below */ }).then(function () {
      status.textContent = "Reconnecting…";
      status.classList.remove("on");
      setTimeout(function () { connect(Math.min(delay * 2, 15000)); }, delay);
    });
  }
  connect(1000);

  // --- Replying -----------------------------------------------------------------------------------

  if (reply) {
    var text = reply.elements.text;
    var problem = document.getElementById("reply-problem");
    reply.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!text.value.trim()) { problem.textContent = "Write a reply first."; problem.hidden = false; text.focus(); return; }
      var body = new FormData(reply);
      var sent = text.value;
      text.value = "";
      problem.hidden = true;
      fetch(reply.action, { method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          return response.json().then(function (data) {
            if (!response.ok) throw new Error(data.error || "The reply was not sent.");
            return data;
          });
        })
        .catch(function (error) {
          text.value = sent;
          problem.textContent = error.message || "The reply was not sent. Try again.";
          problem.hidden = false;
        });
    });
    var lastTyping = 0;
    text.addEventListener("input", function () {
      var now = Date.now();
      if (!reply.dataset.typing || !text.value.trim() || now - lastTyping < TYPING_EVERY) return;
      lastTyping = now;
      fetch(reply.dataset.typing, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": reply.elements.csrfmiddlewaretoken.value },
      }).catch(function () { /* only a courtesy */ });
    });
    text.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        reply.requestSubmit();
      }
    });
  }
  if (thread) thread.scrollTop = thread.scrollHeight;
})();
