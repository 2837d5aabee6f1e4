// The Install page (templates/dashboard/install.html): a Copy button next to each snippet copies its
// text and says so, on the button and to screen readers.
(function () {
  "use strict";
  var status = document.getElementById("copy-status");

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {  // plain http: the older way
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = document.execCommand("copy");
      area.remove();
      if (ok) resolve(); else reject(new Error("copy refused"));
    });
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var label = button.textContent;
    var timer = null;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      copyText(source.textContent).then(function () {
        button.textContent = "Copied";
        button.classList.add("copied");
        status.textContent = "Copied to the clipboard.";
      }, function () {
        var range = document.createRange();  // let the person copy it by hand
        range.selectNodeContents(source);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Press Ctrl+C";
        status.textContent = "Copying was refused: the text is selected, press Ctrl+C (⌘C on a Mac).";
      });
      clearTimeout(timer);
      timer = setTimeout(function () {
        button.textContent = label;
        button.classList.remove("copied");
      }, 2500);
    });
  });
})();
