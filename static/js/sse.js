// Server-Sent Events read over fetch (the chat's answers and live handoff stream, the inbox's stream):
// the one parser, shared by static/js/chat.js and static/js/inbox.js (loaded before them).
(function () {
  "use strict";

  // Parse the complete events at the start of ``buffer`` ("event:", "data:" and "id:" lines, a blank
  // line after each), calling onEvent(name, data parsed from JSON, id or null) for each; returns the
  // rest (an event not yet complete), to prepend to the next chunk.
  function parse(buffer, onEvent) {
    var blocks = buffer.split("\n\n");
    var rest = blocks.pop();
    blocks.forEach(function (block) {
      var name = "message", data = "", id = null;
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event: ") === 0) name = line.slice(7);
        else if (line.indexOf("data: ") === 0) data += line.slice(6);
        else if (line.indexOf("id: ") === 0) id = line.slice(4);
      });
      if (data) onEvent(name, JSON.parse(data), id);
    });
    return rest;
  }

  window.ChatsiteSSE = { parse: parse };
})();
