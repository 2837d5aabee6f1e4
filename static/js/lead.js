// Lead capture inside the conversation (templates/chat/page.html, for the full page and the widget).
// After each answer (and when the visitor asks for a person) the server says whether to ask for the
// visitor's details now (once per conversation, assistants/leads/); if so, a form appears as a message
// of the assistant, not a pop-up, with "No thanks" beside "Send". Everything shown is set as text.
(function () {
  "use strict";
  var root = document.getElementById("chat");
  var log = document.getElementById("log");
  if (!root || !root.dataset.leadCheck) return;
  var lang = (window.ChatsiteI18n && window.ChatsiteI18n.lang) || "en";
  var STRINGS = {
    en: { name: "Name", email: "Email", phone: "Phone", company: "Company", send: "Send", decline: "No thanks",
          thanks: "Thank you! The team will get back to you.", declined: "No problem — let's carry on.",
          failed: "Your details could not be sent. Please try again.", required: "(required)",
          rate_limited: "Too many tries: please wait a few minutes." },
    fr: { name: "Nom", email: "E-mail", phone: "Téléphone", company: "Entreprise", send: "Envoyer", decline: "Non merci",
          thanks: "Merci ! L'équipe vous recontactera.", declined: "Pas de souci, continuons.",
          failed: "Vos coordonnées n'ont pas pu être envoyées. Réessayez.", required: "(obligatoire)",
          rate_limited: "Trop d'essais : patientez quelques minutes." },
    de: { name: "Name", email: "E-Mail", phone: "Telefon", company: "Firma", send: "Senden", decline: "Nein danke",
          thanks: "Danke! Das Team meldet sich bei Ihnen.", declined: "Kein Problem – machen wir weiter.",
          failed: "Ihre Angaben konnten nicht gesendet werden. Bitte erneut versuchen.", required: "(Pflichtfeld)",
          rate_limited: "Zu viele Versuche: bitte einige Minuten warten." },
    es: { name: "Nombre", email: "Correo", phone: "Teléfono", company: "Empresa", send: "Enviar", decline: "No, gracias",
          thanks: "¡Gracias! El equipo se pondrá en contacto.", declined: "Sin problema, sigamos.",
          failed: "No se pudieron enviar sus datos. Inténtelo de nuevo.", required: "(obligatorio)",
          rate_limited: "Demasiados intentos: espere unos minutos." },
    zh: { name: "姓名", email: "电子邮件", phone: "电话", company: "公司", send: "发送", decline: "不用了",
          thanks: "谢谢！团队会与您联系。", declined: "没问题，我们继续。", failed: "无法发送您的信息，请重试。",
          required: "（必填）", rate_limited: "尝试次数过多，请稍后再试。" }
  };
  function t(key) { return (STRINGS[lang] || STRINGS.en)[key] || STRINGS.en[key] || key; }
  var shownFor = {};  // conversation id -> true once its form is shown (the server asks once per conversation too)

  function post(url, detail, body) {
    var headers = {};
    Object.keys(detail.headers || {}).forEach(function (key) { headers[key] = detail.headers[key]; });
    headers["Content-Type"] = "application/json";
    return fetch(url, { method: "POST", credentials: "same-origin", headers: headers, body: JSON.stringify(body) });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function note(box, text) {
    box.textContent = "";
    box.appendChild(el("div", "text", text));
    box.classList.add("lead-done");
  }

  function showForm(spec, detail, trigger) {
    shownFor[detail.conversationId] = true;
    var box = el("div", "msg assistant lead-message");
    box.setAttribute("data-lead-form", trigger);
    var form = el("form", "lead-form");
    form.noValidate = true;
    var titleId = "lead-title";
    var title = el("p", "lead-title", spec.title);
    title.id = titleId;
    form.setAttribute("aria-labelledby", titleId);
    form.appendChild(title);
    spec.fields.forEach(function (field) {
      var row = el("div", "lead-field");
      row.setAttribute("data-field", field.key);
      var label = el("label");
      var id = "lead-" + field.key;
      label.htmlFor = id;
      label.appendChild(el("span", "", STRINGS.en[field.key] ? t(field.key) : field.label));
      if (field.required) label.appendChild(el("span", "lead-required", " " + t("required")));
      var input = el("input");
      input.id = id;
      input.name = field.key;
      input.type = field.type;
      input.maxLength = field.key === "email" ? 254 : 200;
      if (field.key === "email") input.autocomplete = "email";
      else if (field.key === "name") input.autocomplete = "name";
      else if (field.key === "phone") input.autocomplete = "tel";
      else if (field.key === "company") input.autocomplete = "organization";
      if (field.required) input.required = true;
      var problem = el("p", "lead-problem");
      problem.id = id + "-error";
      problem.setAttribute("aria-live", "polite");
      row.appendChild(label);
      row.appendChild(input);
      row.appendChild(problem);
      form.appendChild(row);
    });
    if (spec.consent) {
      var consentRow = el("div", "lead-field lead-consent");
      consentRow.setAttribute("data-field", "consent");
      var consentLabel = el("label");
      var box2 = el("input");
      box2.type = "checkbox";
      box2.name = "consent";
      box2.id = "lead-consent";
      consentLabel.appendChild(box2);
      consentLabel.appendChild(el("span", "", spec.consent));
      var consentProblem = el("p", "lead-problem");
      consentProblem.id = "lead-consent-error";
      consentRow.appendChild(consentLabel);
      consentRow.appendChild(consentProblem);
      form.appendChild(consentRow);
    }
    var general = el("p", "lead-problem lead-general");
    general.setAttribute("role", "alert");
    form.appendChild(general);
    var actions = el("div", "actions");
    var sendButton = el("button", "", t("send"));
    sendButton.type = "submit";
    var declineButton = el("button", "secondary", t("decline"));
    declineButton.type = "button";
    actions.appendChild(sendButton);
    actions.appendChild(declineButton);
    form.appendChild(actions);
    box.appendChild(form);
    log.appendChild(box);
    if (detail.scrollDown) detail.scrollDown();

    function clearProblems() {
      form.querySelectorAll(".lead-problem").forEach(function (p) { p.textContent = ""; });
      form.querySelectorAll("[aria-invalid]").forEach(function (input) {
        input.removeAttribute("aria-invalid");
        input.removeAttribute("aria-describedby");
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearProblems();
      var fields = {};
      spec.fields.forEach(function (field) { fields[field.key] = form.elements[field.key].value.trim(); });
      var consent = form.elements.consent ? form.elements.consent.checked : false;
      sendButton.disabled = true;
      post(root.dataset.lead, detail, { conversation_id: detail.conversationId, fields: fields, consent: consent, page_url: detail.pageUrl })
        .then(function (response) {
          return response.json().catch(function () { return {}; }).then(function (data) { return { status: response.status, data: data }; });
        })
        .then(function (result) {
          sendButton.disabled = false;
          if (result.status === 201) { note(box, t("thanks")); return; }
          if (result.status === 400 && result.data.errors) {
            var first = null;
            Object.keys(result.data.errors).forEach(function (key) {
              var row = form.querySelector("[data-field='" + key + "']");
              if (!row) { general.textContent = result.data.errors[key].join(" "); return; }
              var problem = row.querySelector(".lead-problem");
              problem.textContent = result.data.errors[key].join(" ");
              var input = row.querySelector("input");
              input.setAttribute("aria-invalid", "true");
              input.setAttribute("aria-describedby", problem.id);
              if (!first) first = input;
            });
            if (first) first.focus();
            return;
          }
          general.textContent = t(result.status === 429 ? "rate_limited" : "failed");
        })
        .catch(function () { sendButton.disabled = false; general.textContent = t("failed"); });
    });
    declineButton.addEventListener("click", function () {
      post(root.dataset.lead, detail, { conversation_id: detail.conversationId, decline: true }).catch(function () {});
      note(box, t("declined"));
    });
    // Focus stays in the composer (the visitor may simply go on asking); the log announces the form.
  }

  function check(event, handoff) {
    var detail = event.detail || {};
    if (!detail.conversationId || shownFor[detail.conversationId]) return;
    post(root.dataset.leadCheck, detail, { conversation_id: detail.conversationId, handoff: handoff })
      .then(function (response) { return response.ok ? response.json() : { ask: false }; })
      .then(function (data) {
        if (!data.ask || shownFor[detail.conversationId]) return;
        if (handoff) {  // the lead form takes the place of the contact form
          var contact = document.getElementById("contact");
          if (contact) contact.hidden = true;
        }
        showForm(data.form, detail, data.form.trigger);
      })
      .catch(function () { /* no form then */ });
  }

  root.addEventListener("chatsite:answered", function (event) { check(event, false); });
  root.addEventListener("chatsite:handoff", function (event) { check(event, true); });
})();
