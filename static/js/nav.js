// The navigation bar's menus (templates/base.html): <details> elements that work without script;
// this closes an open one on a click elsewhere, on Escape, and when another opens; on a phone it
// scrolls the sections' bar to the current one.
(function () {
  "use strict";
  var menus = Array.prototype.slice.call(document.querySelectorAll("details[data-menu]"));
  menus.forEach(function (menu) {
    menu.addEventListener("toggle", function () {
      if (!menu.open) return;
      menus.forEach(function (other) { if (other !== menu) other.open = false; });
    });
  });
  document.addEventListener("click", function (event) {
    menus.forEach(function (menu) { if (menu.open && !menu.contains(event.target)) menu.open = false; });
  });
  // On a phone the sections scroll sideways: keep the current one in sight.
  var current = document.querySelector(".mainnav a[aria-current=page]");
  var bar = current && current.parentElement;
  if (bar && bar.scrollWidth > bar.clientWidth) {
    bar.scrollLeft = Math.max(0, current.offsetLeft - bar.offsetLeft - (bar.clientWidth - current.offsetWidth) / 2);
  }
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    menus.forEach(function (menu) {
      if (menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  });
})();
