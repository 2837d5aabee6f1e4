// The assistant form's live preview (templates/dashboard/assistant_form.html, and the Branding and
// Behaviour sections of the settings): the widget's look, updated as the form changes. Text goes in
// as text (textContent); colours only as #rrggbb; images only from http(s) URLs; nothing else is fetched.
(function () {
  "use strict";
  var form = document.getElementById("assistant-form");
  var preview = document.getElementById("preview");
  if (!form || !preview) return;
  var ICONS = {
    chat: "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z",
    help: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 16h-2v-2h2v2zm2.1-7.8-.9.9C13.5 11.8 13 12.5 13 14h-2v-.5c0-1.1.5-2.1 1.2-2.8l1.2-1.3A2 2 0 0 0 12 6a2 2 0 0 0-2 2H8a4 4 0 1 1 7.1 2.2z",
    spark: "M12 2l2.4 6.6L21 11l-6.6 2.4L12 20l-2.4-6.6L3 11l6.6-2.4z"
  };
  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function part(name) { return preview.querySelector("[data-preview='" + name + "']"); }
  // A field of the form, else the saved value the preview carries (a settings section shows only
  // some of the fields: templates/dashboard/_preview.html).
  function value(name) {
    var field = form.elements[name];
    if (!field) {
      var saved = preview.getAttribute("data-" + (name === "theme" ? "theme-setting" : name));
      if (saved === "true" || saved === "false") return saved === "true";
      return saved || "";
    }
    return field.type === "checkbox" ? field.checked : String(field.value || "");
  }
  function color(raw, fallback) { return /^#[0-9a-fA-F]{6}$/.test(raw) ? raw : fallback; }
  // Dark or white text on a colour, whichever contrasts more (as assistants.selectors.readable_colors).
  function onColor(hex) {
    var l = [1, 3, 5].map(function (i) {
      var c = parseInt(hex.substr(i, 2), 16) / 255;
      return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var lum = 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
    return 1.05 / (lum + 0.05) > (lum + 0.05) / 0.05 ? "#ffffff" : "#111827";
  }
  function webUrl(raw) {
    try {
      var url = new URL(raw.trim());
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : "";
    } catch (e) { return ""; }
  }
  function image(el, raw) {
    var url = webUrl(raw);
    el.hidden = !url;
    if (url) el.src = url; else el.removeAttribute("src");
  }
  function svgIcon(name) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name] || ICONS.chat);
    svg.appendChild(path);
    return svg;
  }

  function update() {
    preview.style.setProperty("--brand", color(value("primary_color"), "#2563eb"));
    preview.style.setProperty("--on-brand", onColor(color(value("primary_color"), "#2563eb")));
    var theme = value("theme") || "auto";
    var dark = theme === "dark" || (theme === "auto" && darkQuery && darkQuery.matches);
    preview.setAttribute("data-theme", dark ? "dark" : "light");
    if (!dark) preview.style.setProperty("--surface", color(value("background_color"), "#ffffff"));
    else preview.style.removeProperty("--surface");
    part("name").textContent = value("name") || "Assistant";
    part("greeting").textContent = value("greeting");
    image(part("logo"), value("logo_url"));
    image(part("avatar"), value("avatar_url"));
    var chips = part("chips");
    chips.textContent = "";
    value("suggested_questions").split("\n").map(function (line) { return line.trim(); })
      .filter(Boolean).slice(0, 6).forEach(function (question) {
        var chip = document.createElement("span");
        chip.textContent = question.slice(0, 120);
        chips.appendChild(chip);
      });
    part("powered").hidden = !value("show_powered_by");
    var launcher = part("launcher");
    launcher.classList.toggle("left", value("launcher_position") === "left");
    var icon = part("icon");
    icon.textContent = "";
    icon.appendChild(svgIcon(value("launcher_icon") || "chat"));
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  if (darkQuery && darkQuery.addEventListener) darkQuery.addEventListener("change", update);
  update();
})();
