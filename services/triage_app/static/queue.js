// Keeps the queue current: fetches the server-rendered (escaped) rows every few seconds.
(function () {
  "use strict";
  var table = document.getElementById("queue");
  var rows = document.getElementById("queue-rows");
  if (!table || !rows) { return; }
  var seconds = parseInt(table.getAttribute("data-refresh"), 10) || 5;
  function refresh() {
    fetch("/queue/rows", {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/login"); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) { if (html !== null) { rows.innerHTML = html; } })
      .catch(function () { /* offline for a moment: try again at the next tick */ });
  }
  window.setInterval(refresh, seconds * 1000);
}());
