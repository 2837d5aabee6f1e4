// The chat's interface strings in English, French, German, Spanish and Chinese, chosen from the
// browser's language. Elements carry their string's key: data-i18n (text), data-i18n-placeholder,
// data-i18n-label (aria-label) and data-i18n-title; the template holds the English text.
(function () {
  "use strict";
  var STRINGS = {
    en: {
      conversation: "Conversation",
      question: "Your question",
      placeholder: "Ask a question…",
      send: "Send",
      open: "Open chat",
      close: "Close chat",
      typing: "The assistant is typing…",
      sources: "Sources",
      new_tab: "opens in a new tab",
      helpful: "Helpful",
      not_helpful: "Not helpful",
      comment: "Tell us more (optional)",
      send_comment: "Send feedback",
      feedback_thanks: "Thanks for your feedback.",
      feedback_failed: "Your feedback could not be saved.",
      human: "Talk to a person",
      contact_intro: "Leave your details and someone from the team will get back to you.",
      name: "Name",
      email: "Email",
      message: "Message (optional)",
      cancel: "Cancel",
      contact_thanks: "Thanks! The team will get back to you at {email}.",
      contact_failed: "Your details could not be sent. Please check your email address and try again.",
      error_rate_limited: "The assistant is getting too many questions right now. Please try again in a minute.",
      busy_retrying: "The assistant is busy — trying again in a moment…",
      error_unavailable: "The assistant is not available at the moment. Please try again later.",
      error_network: "The assistant could not be reached. Check your connection and try again.",
      handoff_offer: "Would you like to talk to a person from the team?",
      handoff_waiting: "We’re finding a person from the team for you. You can keep writing here.",
      handoff_joined: "{agent} joined the conversation.",
      handoff_replying: "{agent} is replying",
      handoff_typing: "{agent} is typing…",
      handoff_resolved: "The team closed this conversation. The assistant answers your next questions.",
      handoff_unavailable: "Sorry, nobody from the team can answer right now. Leave your email and we’ll get back to you.",
      leave_email: "Leave my email",
      team_member: "Team",
      powered_by: "Powered by",
      new_conversation: "New conversation",
      new_conversation_started: "New conversation: ask your question.",
      suggestions: "Suggested questions"
    },
    fr: {
      conversation: "Conversation",
      question: "Votre question",
      placeholder: "Posez une question…",
      send: "Envoyer",
      open: "Ouvrir le chat",
      close: "Fermer le chat",
      typing: "L’assistant écrit…",
      sources: "Sources",
      new_tab: "s’ouvre dans un nouvel onglet",
      helpful: "Utile",
      not_helpful: "Pas utile",
      comment: "Dites-nous en plus (facultatif)",
      send_comment: "Envoyer l’avis",
      feedback_thanks: "Merci pour votre avis.",
      feedback_failed: "Votre avis n’a pas pu être enregistré.",
      human: "Parler à une personne",
      contact_intro: "Laissez vos coordonnées et un membre de l’équipe vous répondra.",
      name: "Nom",
      email: "E-mail",
      message: "Message (facultatif)",
      cancel: "Annuler",
      contact_thanks: "Merci ! L’équipe vous répondra à {email}.",
      contact_failed: "Vos coordonnées n’ont pas pu être envoyées. Vérifiez votre adresse e-mail et réessayez.",
      error_rate_limited: "L’assistant reçoit trop de questions en ce moment. Réessayez dans une minute.",
      busy_retrying: "L’assistant est occupé — nouvel essai dans un instant…",
      error_unavailable: "L’assistant n’est pas disponible pour le moment. Réessayez plus tard.",
      error_network: "Impossible de joindre l’assistant. Vérifiez votre connexion et réessayez.",
      handoff_offer: "Voulez-vous parler à une personne de l’équipe ?",
      handoff_waiting: "Nous cherchons une personne de l’équipe pour vous. Vous pouvez continuer à écrire ici.",
      handoff_joined: "{agent} a rejoint la conversation.",
      handoff_replying: "{agent} vous répond",
      handoff_typing: "{agent} est en train d’écrire…",
      handoff_resolved: "L’équipe a clos cette conversation. L’assistant répond à vos prochaines questions.",
      handoff_unavailable: "Désolé, personne de l’équipe ne peut répondre pour le moment. Laissez votre e-mail et nous vous répondrons.",
      leave_email: "Laisser mon e-mail",
      team_member: "Équipe",
      powered_by: "Propulsé par",
      new_conversation: "Nouvelle conversation",
      new_conversation_started: "Nouvelle conversation : posez votre question.",
      suggestions: "Questions suggérées"
    },
    de: {
      conversation: "Unterhaltung",
      question: "Ihre Frage",
      placeholder: "Stellen Sie eine Frage…",
      send: "Senden",
      open: "Chat öffnen",
      close: "Chat schließen",
      typing: "Der Assistent schreibt…",
      sources: "Quellen",
      new_tab: "öffnet in einem neuen Tab",
      helpful: "Hilfreich",
      not_helpful: "Nicht hilfreich",
      comment: "Erzählen Sie uns mehr (optional)",
      send_comment: "Feedback senden",
      feedback_thanks: "Danke für Ihr Feedback.",
      feedback_failed: "Ihr Feedback konnte nicht gespeichert werden.",
      human: "Mit einer Person sprechen",
      contact_intro: "Hinterlassen Sie Ihre Kontaktdaten, und jemand aus dem Team meldet sich bei Ihnen.",
      name: "Name",
      email: "E-Mail",
      message: "Nachricht (optional)",
      cancel: "Abbrechen",
      contact_thanks: "Danke! Das Team meldet sich unter {email} bei Ihnen.",
      contact_failed: "Ihre Angaben konnten nicht gesendet werden. Bitte prüfen Sie Ihre E-Mail-Adresse.",
      error_rate_limited: "Der Assistent erhält gerade zu viele Fragen. Bitte versuchen Sie es in einer Minute erneut.",
      busy_retrying: "Der Assistent ist beschäftigt — neuer Versuch gleich…",
      error_unavailable: "Der Assistent ist im Moment nicht verfügbar. Bitte versuchen Sie es später erneut.",
      error_network: "Der Assistent ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.",
      handoff_offer: "Möchten Sie mit einer Person aus dem Team sprechen?",
      handoff_waiting: "Wir suchen jemanden aus dem Team für Sie. Sie können hier weiterschreiben.",
      handoff_joined: "{agent} ist dem Gespräch beigetreten.",
      handoff_replying: "{agent} antwortet",
      handoff_typing: "{agent} schreibt…",
      handoff_resolved: "Das Team hat dieses Gespräch beendet. Der Assistent beantwortet Ihre nächsten Fragen.",
      handoff_unavailable: "Leider kann gerade niemand aus dem Team antworten. Hinterlassen Sie Ihre E-Mail-Adresse, wir melden uns.",
      leave_email: "E-Mail hinterlassen",
      team_member: "Team",
      powered_by: "Bereitgestellt von",
      new_conversation: "Neue Unterhaltung",
      new_conversation_started: "Neue Unterhaltung: Stellen Sie Ihre Frage.",
      suggestions: "Vorgeschlagene Fragen"
    },
    es: {
      conversation: "Conversación",
      question: "Tu pregunta",
      placeholder: "Haz una pregunta…",
      send: "Enviar",
      open: "Abrir el chat",
      close: "Cerrar el chat",
      typing: "El asistente está escribiendo…",
      sources: "Fuentes",
      new_tab: "se abre en una pestaña nueva",
      helpful: "Útil",
      not_helpful: "No es útil",
      comment: "Cuéntanos más (opcional)",
      send_comment: "Enviar comentario",
      feedback_thanks: "Gracias por tu comentario.",
      feedback_failed: "No se pudo guardar tu comentario.",
      human: "Hablar con una persona",
      contact_intro: "Deja tus datos y alguien del equipo se pondrá en contacto contigo.",
      name: "Nombre",
      email: "Correo electrónico",
      message: "Mensaje (opcional)",
      cancel: "Cancelar",
      contact_thanks: "¡Gracias! El equipo te responderá en {email}.",
      contact_failed: "No se pudieron enviar tus datos. Revisa tu correo electrónico e inténtalo de nuevo.",
      error_rate_limited: "El asistente está recibiendo demasiadas preguntas. Inténtalo de nuevo en un minuto.",
      busy_retrying: "El asistente está ocupado — reintentando en un momento…",
      error_unavailable: "El asistente no está disponible en este momento. Inténtalo más tarde.",
      error_network: "No se pudo contactar con el asistente. Revisa tu conexión e inténtalo de nuevo.",
      handoff_offer: "¿Quieres hablar con una persona del equipo?",
      handoff_waiting: "Estamos buscando a una persona del equipo para ti. Puedes seguir escribiendo aquí.",
      handoff_joined: "{agent} se ha unido a la conversación.",
      handoff_replying: "{agent} está respondiendo",
      handoff_typing: "{agent} está escribiendo…",
      handoff_resolved: "El equipo ha cerrado esta conversación. El asistente responde a tus próximas preguntas.",
      handoff_unavailable: "Lo sentimos, ahora nadie del equipo puede responder. Deja tu correo y te contestaremos.",
      leave_email: "Dejar mi correo",
      team_member: "Equipo",
      powered_by: "Con la tecnología de",
      new_conversation: "Nueva conversación",
      new_conversation_started: "Nueva conversación: haz tu pregunta.",
      suggestions: "Preguntas sugeridas"
    },
    zh: {
      conversation: "对话",
      question: "您的问题",
      placeholder: "请输入问题…",
      send: "发送",
      open: "打开聊天",
      close: "关闭聊天",
      typing: "助手正在输入…",
      sources: "来源",
      new_tab: "在新标签页中打开",
      helpful: "有帮助",
      not_helpful: "没有帮助",
      comment: "告诉我们更多（可选）",
      send_comment: "发送反馈",
      feedback_thanks: "感谢您的反馈。",
      feedback_failed: "无法保存您的反馈。",
      human: "联系人工客服",
      contact_intro: "留下您的联系方式，团队成员会尽快回复您。",
      name: "姓名",
      email: "电子邮箱",
      message: "留言（可选）",
      cancel: "取消",
      contact_thanks: "谢谢！团队会通过 {email} 联系您。",
      contact_failed: "无法发送您的信息。请检查电子邮箱地址后重试。",
      error_rate_limited: "助手当前收到的问题过多，请一分钟后再试。",
      busy_retrying: "助手正忙，稍后自动重试…",
      error_unavailable: "助手暂时不可用，请稍后再试。",
      error_network: "无法连接到助手。请检查网络连接后重试。",
      handoff_offer: "您想和团队成员交流吗？",
      handoff_waiting: "我们正在为您寻找团队成员。您可以继续在这里留言。",
      handoff_joined: "{agent} 已加入对话。",
      handoff_replying: "{agent} 正在回复",
      handoff_typing: "{agent} 正在输入…",
      handoff_resolved: "团队已结束此对话。助手将回答您接下来的问题。",
      handoff_unavailable: "抱歉，目前团队中没有人可以回复。请留下您的邮箱，我们会联系您。",
      leave_email: "留下我的邮箱",
      team_member: "团队",
      powered_by: "技术支持：",
      new_conversation: "新对话",
      new_conversation_started: "新对话：请输入您的问题。",
      suggestions: "推荐问题"
    }
  };

  function pickLanguage() {
    // The assistant's own language when its team chose one (<html data-lang>), else the browser's.
    var chosen = document.documentElement.getAttribute("data-lang") || "";
    if (STRINGS.hasOwnProperty(chosen)) return chosen;
    var wanted = (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"]);
    for (var i = 0; i < wanted.length; i++) {
      var code = String(wanted[i] || "").toLowerCase().split("-")[0];
      if (STRINGS.hasOwnProperty(code)) return code;
    }
    return "en";
  }

  var lang = pickLanguage();

  // The string for ``key`` in the chosen language, with {name} placeholders filled from ``vars``.
  function t(key, vars) {
    var text = STRINGS[lang][key] || STRINGS.en[key] || key;
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return vars && vars.hasOwnProperty(name) ? String(vars[name]) : whole;
    });
  }

  function translate(root) {
    var targets = { "data-i18n": null, "data-i18n-placeholder": "placeholder", "data-i18n-label": "aria-label", "data-i18n-title": "title" };
    Object.keys(targets).forEach(function (marker) {
      root.querySelectorAll("[" + marker + "]").forEach(function (el) {
        var text = t(el.getAttribute(marker));
        if (targets[marker]) el.setAttribute(targets[marker], text);
        else el.textContent = text;
      });
    });
  }

  document.documentElement.lang = lang;
  window.ChatsiteI18n = { lang: lang, t: t, translate: translate };
})();
