// The Chatsite widget loader. A website adds:
//   <script src="https://HOST/widget.js" data-assistant="PUBLIC_KEY" async></script>
// It asks HOST whether this page's origin is an allowed domain (/embed/KEY/allowed, with the launcher's
// look). If not, the visitor sees nothing and the console tells the site's owner what to change (CSP
// frame-ancestors is the real enforcement). If so, a launcher opens the chat in an iframe from HOST
// (/embed/KEY/), out of the page's reach; the two talk by postMessage ({source: "chatsite", type, ...}),
// each checking the other's origin and window.
// API: Chatsite.open(), .close(), .ask(text), .identify({name, email}); nothing shows before the
// check allows the page. A "talk to a person" click is dispatched on window as "chatsite:handoff".
// This page's localStorage keeps for the chat (a third-party iframe may be refused storage) the
// visitor token, which resumes the conversation, and the id of one the visitor left for a new one.
// The brand (colours, side "right"/"left", icon "chat"/"help"/"spark") is checked, else ignored.
// A second load does nothing.
(function () {
  "use strict";
  if (window.Chatsite && window.Chatsite.loaded) return;

  var script = document.currentScript || document.querySelector("script[data-assistant][src*='widget.js']");
  var key = script && script.getAttribute("data-assistant");
  if (!key || !/^pk_[\w-]+$/.test(key)) {
    if (window.console) console.warn("Chatsite: the widget script needs data-assistant=\"pk_...\"");
    return;
  }
  var platform = new URL(script.src, location.href).origin;
  var embed = platform + "/embed/" + encodeURIComponent(key) + "/";
  var here = "?origin=" + encodeURIComponent(location.origin);
  var where = " in the dashboard (" + platform + "/): your assistant, Install.";
  var ready = false;
  var isOpen = false;
  var queue = [];
  var labels = { open: "Open chat", close: "Close chat" };
  var LEFT = "chatsite-left:" + key;
  var visitor = visitorToken();

  var ICONS = {
    chat: "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z",
    help: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 16h-2v-2h2v2zm2.1-7.8-.9.9C13.5 11.8 13 12.5 13 14h-2v-.5c0-1.1.5-2.1 1.2-2.8l1.2-1.3A2 2 0 0 0 12 6a2 2 0 0 0-2 2H8a4 4 0 1 1 7.1 2.2z",
    spark: "M12 2l2.4 6.6L21 11l-6.6 2.4L12 20l-2.4-6.6L3 11l6.6-2.4z"
  };

  var CSS = [
    ".cs-launcher{all:initial;position:fixed;right:20px;bottom:20px;z-index:2147483646;width:56px;height:56px;",
    "border-radius:50%;background:#2563eb;color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);cursor:pointer;",
    "display:flex;align-items:center;justify-content:center;transition:transform .15s}",
    ".cs-launcher:hover{transform:scale(1.06)}",
    ".cs-launcher:focus-visible{outline:3px solid #111827;outline-offset:3px}",
    ".cs-launcher svg{width:26px;height:26px;fill:currentColor}",
    ".cs-panel{all:initial;position:fixed;right:20px;bottom:88px;z-index:2147483647;width:380px;height:600px;",
    "max-width:calc(100vw - 40px);max-height:calc(100vh - 108px);border:0;border-radius:14px;background:#fff;",
    "box-shadow:0 10px 40px rgba(0,0,0,.25);display:none}",
    ".cs-open .cs-panel{display:block}",
    ".cs-left .cs-launcher,.cs-left .cs-panel{right:auto;left:20px}",
    "@media (max-width:480px){.cs-panel{top:0;left:0;right:0;bottom:0;width:100%;height:100%;",
    "max-width:none;max-height:none;border-radius:0}.cs-left .cs-panel{left:0}.cs-open .cs-launcher{display:none}}"
  ].join("");

  var container = document.createElement("div");
  container.className = "cs-widget";
  var launcher = document.createElement("button");
  launcher.type = "button";
  launcher.className = "cs-launcher";
  launcher.setAttribute("aria-label", labels.open);
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "cs-panel");
  launcher.appendChild(icon("chat"));
  var frame = document.createElement("iframe");
  frame.className = "cs-panel";
  frame.id = "cs-panel";
  frame.title = "Chat";
  // The chat may open its sources in new tabs, never navigate or script this page.
  frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox");

  // Read (one argument) or write this page's localStorage; "" when storage is disabled.
  function stored(name, value) {
    try {
      if (value === undefined) return localStorage.getItem(name) || "";
      localStorage.setItem(name, value);
    } catch (e) { /* storage disabled: a new conversation on each page */ }
    return "";
  }

  function visitorToken() {
    var saved = stored("chatsite-visitor");
    if (/^[\w-]{20,64}$/.test(saved)) return saved;
    var bytes = crypto.getRandomValues(new Uint8Array(24));
    var token = btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_");
    stored("chatsite-visitor", token);
    return token;
  }


  function icon(name) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("data-icon", name);
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
    svg.appendChild(path);
    return svg;
  }

  function post(type, data) {
    var message = { source: "chatsite", type: type };
    Object.keys(data || {}).forEach(function (name) { message[name] = data[name]; });
    if (ready) frame.contentWindow.postMessage(message, platform);
    else queue.push(message);
  }

  function sendPage() { post("page", { url: location.href, title: document.title }); }

  function setLabel() { launcher.setAttribute("aria-label", isOpen ? labels.close : labels.open); }

  function brand(data) {
    if (/^#[0-9a-fA-F]{6}$/.test(data.color || "")) launcher.style.background = data.color;
    if (/^#[0-9a-fA-F]{6}$/.test(data.on_color || "")) launcher.style.color = data.on_color;
    if (data.position === "left" || data.position === "right") container.classList.toggle("cs-left", data.position === "left");
    if (typeof data.icon === "string" && ICONS.hasOwnProperty(data.icon)) launcher.replaceChild(icon(data.icon), launcher.firstChild);
  }

  function onReady(data) {
    brand(data);
    if (data.labels && typeof data.labels.open === "string" && typeof data.labels.close === "string") {
      labels = { open: data.labels.open.slice(0, 80), close: data.labels.close.slice(0, 80) };
      setLabel();
    }
    if (typeof data.title === "string") frame.title = data.title.slice(0, 120);
    ready = true;
    var hello = { source: "chatsite", type: "hello", visitor: visitor, left: stored(LEFT), url: location.href, title: document.title };
    frame.contentWindow.postMessage(hello, platform);
    queue.splice(0).forEach(function (message) { frame.contentWindow.postMessage(message, platform); });
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.origin !== platform || event.source !== frame.contentWindow || !data || data.source !== "chatsite") return;
    if (data.type === "ready") onReady(data);
    else if (data.type === "close") close();
    else if (data.type === "left") stored(LEFT, String(data.id || ""));
    else if (data.type === "handoff") {
      window.dispatchEvent(new CustomEvent("chatsite:handoff", { detail: { conversationId: data.conversation_id || null } }));
    }
  });

  function open() {
    if (!isOpen) {
      isOpen = true;
      container.classList.add("cs-open");
      launcher.setAttribute("aria-expanded", "true");
      setLabel();
    }
    sendPage();  // the page may have changed since (single-page applications)
    frame.focus();
    post("focus");
  }

  function close() {
    if (!isOpen) return;
    isOpen = false;
    container.classList.remove("cs-open");
    launcher.setAttribute("aria-expanded", "false");
    setLabel();
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (isOpen) close(); else open(); });
  document.addEventListener("keydown", function (event) { if (event.key === "Escape" && isOpen) close(); });

  function mount() {
    var style = document.createElement("style");
    style.textContent = CSS;
    document.head.appendChild(style);
    frame.src = embed + here;
    container.appendChild(launcher);
    container.appendChild(frame);
    document.body.appendChild(container);
  }

  function warn(text) { if (window.console) console.warn("Chatsite: " + text); }

  // Ask the platform before showing anything: a site that is not allowed gets no launcher and no frame.
  function check() {
    return fetch(embed + "allowed" + here, { credentials: "omit", cache: "no-store" }).then(function (response) {
      if (response.status === 404) {
        warn("no assistant has the key " + key + ". Copy the snippet again" + where);
        return null;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    }).then(function (answer) {
      if (!answer) return;
      if (answer.allowed === true) {
        if (answer.brand) brand(answer.brand);
        if (document.body) mount();
        else document.addEventListener("DOMContentLoaded", mount);
        return;
      }
      var entry = typeof answer.add === "string" && answer.add ? answer.add : location.hostname;
      warn("the chat is not shown on this page: " + location.origin + " is not in the assistant's Allowed " +
        "domains. To show it here, add " + entry + " to Allowed domains" + where);
    }).catch(function () {
      warn("the chat is not shown, because " + platform + " could not be reached to check this site.");
    });
  }
  check();

  window.Chatsite = {
    loaded: true,
    open: open,
    close: close,
    ask: function (text) {
      open();
      post("ask", { text: String(text || "") });
    },
    identify: function (person) {
      person = person || {};
      post("identify", { name: String(person.name || ""), email: String(person.email || "") });
    }
  };
})();
