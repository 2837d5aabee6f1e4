// Source page: refresh the crawl progress without reloading while a crawl runs.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box) return;
  var ACTIVE = { queued: 1, running: 1 };

  function lookup(data, path) {
    return path.split(".").reduce(function (value, key) { return value == null ? value : value[key]; }, data);
  }

  function render(data) {
    box.querySelectorAll("[data-field]").forEach(function (el) {
      var value = lookup(data, el.getAttribute("data-field"));
      el.textContent = value == null ? "0" : String(value);
    });
    var badge = box.querySelector(".badge");
    if (badge) badge.className = "badge " + data.status;
  }

  function poll() {
    fetch(box.getAttribute("data-url"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        render(data);
        var busy = ACTIVE[data.status] || (data.documents && data.documents.pending > 0);
        if (busy) setTimeout(poll, 1500);
        else if (box.getAttribute("data-was-busy")) location.reload();  // show the final report
        if (busy) box.setAttribute("data-was-busy", "1");
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  poll();
})();
