// The full-page assistant: sends a question, reads the Server-Sent Events stream, shows tokens
// as they come and the cited sources at the end. Everything the model or a visitor writes is
// inserted as text (textContent), never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("chat");
  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("question");
  var send = document.getElementById("send");
  var statusLine = document.getElementById("status");
  var conversationId = null;

  function safeUrl(url) {
    try {
      var parsed = new URL(url, location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) { return null; }
  }

  function bubble(role, text) {
    var el = document.createElement("div");
    el.className = "msg " + role;
    var body = document.createElement("div");
    body.className = "text";
    body.textContent = text || "";
    el.appendChild(body);
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
    return el;
  }

  // Replace [n] markers in the answer with links to the cited source; the rest stays text.
  function renderAnswer(el, text, citations) {
    var body = el.querySelector(".text");
    var byNumber = {};
    (citations || []).forEach(function (c) { byNumber[c.n] = c; });
    body.textContent = "";
    text.split(/(\[\d{1,2}\])/).forEach(function (part) {
      var match = /^\[(\d{1,2})\]$/.exec(part);
      var citation = match && byNumber[match[1]];
      var href = citation && safeUrl(citation.url);
      if (href) {
        var a = document.createElement("a");
        a.className = "cite";
        a.href = href;
        a.target = "_blank";
        a.rel = "noopener noreferrer nofollow";
        a.textContent = "[" + match[1] + "]";
        a.title = citation.title;
        body.appendChild(a);
      } else {
        body.appendChild(document.createTextNode(part));
      }
    });
    if (citations && citations.length) {
      var list = document.createElement("ol");
      list.className = "sources";
      citations.forEach(function (c) {
        var href = safeUrl(c.url);
        var li = document.createElement("li");
        li.value = c.n;
        var a = document.createElement(href ? "a" : "span");
        if (href) { a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer nofollow"; }
        a.textContent = c.title + (c.section ? " — " + c.section : "");
        li.appendChild(a);
        list.appendChild(li);
      });
      el.appendChild(list);
    }
  }

  function parseEvents(buffer, onEvent) {
    var parts = buffer.split("\n\n");
    var rest = parts.pop();
    parts.forEach(function (block) {
      var name = "message", data = "";
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event: ") === 0) name = line.slice(7);
        else if (line.indexOf("data: ") === 0) data += line.slice(6);
      });
      if (data) onEvent(name, JSON.parse(data));
    });
    return rest;
  }

  function ask(question) {
    bubble("user", question);
    var answer = bubble("assistant", "");
    var text = "";
    send.disabled = true;
    statusLine.textContent = "Thinking…";
    fetch(root.getAttribute("data-endpoint"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
      body: JSON.stringify({ question: question, conversation_id: conversationId, page_url: location.href })
    }).then(function (response) {
      if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffer = parseEvents(buffer + decoder.decode(chunk.value, { stream: true }), function (name, data) {
            if (name === "meta") conversationId = data.conversation_id;
            else if (name === "token") { text += data.text; answer.querySelector(".text").textContent = text; statusLine.textContent = ""; }
            else if (name === "citations") renderAnswer(answer, text, data.citations);
            else if (name === "error") {
              var note = bubble("assistant error", data.message + " You can also ask to talk to a person.");
              note.setAttribute("data-kind", data.kind);
            }
            log.scrollTop = log.scrollHeight;
          });
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      bubble("assistant error", "Sorry, the assistant could not be reached. Please try again in a moment.");
    }).then(function () {
      send.disabled = false;
      statusLine.textContent = "";
      input.focus();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var question = input.value.trim();
    if (!question || send.disabled) return;
    input.value = "";
    ask(question);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });

  // Resume the visitor's conversation after a reload.
  fetch(root.getAttribute("data-resume"), { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (data) {
      conversationId = data.conversation_id;
      (data.messages || []).forEach(function (m) {
        var el = bubble(m.role, m.text);
        if (m.role === "assistant") renderAnswer(el, m.text, m.citations);
      });
    })
    .catch(function () {});
})();
