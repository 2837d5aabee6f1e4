// The API keys page (templates/dashboard/api_keys.html): the Copy button of a new key.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var label = button.textContent;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      var text = source.textContent.trim();
      function done(ok) {
        button.textContent = ok ? button.getAttribute("data-copied") : "Select and copy it";
        if (!ok) window.getSelection().selectAllChildren(source);
        window.setTimeout(function () { button.textContent = label; }, 2000);
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
      } else {
        done(false);
      }
    });
  });
})();
