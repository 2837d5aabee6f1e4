// The getting-started checklist (templates/dashboard/_checklist.html): it polls the assistant's state
// (assistants/web/install.py `checklist`) and ticks each step as it is done, without a reload, until
// every step is, with the status of the sources listed under it; the words come from the server, set as text. Every 3 s at first, less often while
// nothing changes (up to every 30 s), and every 3 s again when the page comes back into view.
(function () {
  "use strict";
  var list = document.getElementById("checklist");
  if (!list || list.hasAttribute("data-complete")) return;
  var complete = document.getElementById("checklist-complete");
  var FAST = 3000;
  var delay = FAST;
  var last = "";
  var timer = null;

  function later(ms) { clearTimeout(timer); timer = setTimeout(poll, ms); }

  function render(data) {
    data.steps.forEach(function (step) {
      var item = list.querySelector("[data-step='" + step.key + "']");
      if (!item) return;
      item.classList.toggle("done", step.done);
      item.classList.toggle("current", data.current === step.key);
      item.querySelector("[data-detail]").textContent = step.detail;
      item.querySelector("[data-state]").textContent = step.done ? "(done)" : "(to do)";
    });
    if (complete) complete.hidden = !data.complete;
    (data.sources || []).forEach(function (source) {
      var row = document.querySelector("[data-source='" + Number(source.id) + "']");
      if (!row) return;
      var badge = row.querySelector("[data-source-status]");
      badge.className = "badge " + String(source.status).replace(/[^a-z_]/g, "");
      badge.textContent = source.label;
      row.querySelector("[data-source-pages]").textContent = String(source.pages);
    });
  }

  function poll() {
    if (document.hidden) { later(delay); return; }
    fetch(list.getAttribute("data-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        var now = JSON.stringify(data);
        delay = now === last ? Math.min(delay * 1.2, 30000) : FAST;
        last = now;
        render(data);
        if (!data.complete) later(delay);
      })
      .catch(function () { later(delay * 4); });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) return;
    delay = FAST;
    later(0);
  });
  later(delay);
})();
