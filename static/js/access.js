// The access-code page inside the widget's iframe (templates/chat/access.html): its close button and
// Esc close the panel, by the message the loader (static/widget.js) takes from its iframe, sent only
// to the host page the loader named in ?origin=. On the full page there is no such button.
(function () {
  "use strict";
  var origin = new URLSearchParams(location.search).get("origin") || "";
  try {
    if (window.parent === window || new URL(origin).origin !== origin) return;
  } catch (e) { return; }
  var button = document.querySelector(".access-close");
  if (!button) return;
  function close() { window.parent.postMessage({ source: "chatsite", type: "close" }, origin); }
  button.hidden = false;
  button.addEventListener("click", close);
  document.addEventListener("keydown", function (event) { if (event.key === "Escape") close(); });
})();
