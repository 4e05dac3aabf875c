// Keeps the queue current: fetches the server-rendered (escaped) rows every few seconds.
// A keyboard user keeps their place: the focus stays on the row it was on (or the table, if that
// alert has left the queue). The updates can be paused (WCAG 2.2.2).
(function () {
  "use strict";
  var table = document.getElementById("queue");
  var rows = document.getElementById("queue-rows");
  if (!table || !rows) { return; }
  var seconds = parseInt(table.getAttribute("data-refresh"), 10) || 5;
  var paused = false;
  var pause = document.getElementById("queue-pause");
  var said = document.getElementById("queue-live");
  var running = said ? said.textContent : "";
  var counts = summary();
  if (pause) {
    pause.hidden = false;
    pause.addEventListener("click", function () {
      paused = !paused;
      pause.setAttribute("aria-pressed", paused ? "true" : "false");
      if (said) {
        said.textContent = paused ? "Live updates are paused: reload the page, or press the button again, "
          + "for the queue as it is now." : running;
      }
    });
  }
  function focusedAlert() {
    var active = document.activeElement;
    if (!active || !rows.contains(active)) { return null; }
    var row = active.closest("tr[data-alert-id]");
    return row ? row.getAttribute("data-alert-id") : "";
  }
  function summary() {
    var found = document.getElementById("queue-summary");
    return found ? found.textContent.trim() : "";
  }
  function replace(html) {
    var alertId = focusedAlert();
    rows.innerHTML = html;
    // The counts are a status message (WCAG 4.1.3): said in the live region when they change, and only then.
    var now = summary();
    if (said && now !== counts) { said.textContent = "Queue updated: " + now + "."; }
    counts = now;
    if (alertId === null) { return; }
    var link = null;
    var row = Array.prototype.find.call(rows.querySelectorAll("tr[data-alert-id]"), function (r) {
      return r.getAttribute("data-alert-id") === alertId;
    });
    if (row) { link = row.querySelector("a"); }
    (link || table).focus();
  }
  function refresh() {
    if (paused) { return; }
    fetch("/queue/rows", {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/login"); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) { if (html !== null && !paused) { replace(html); } })
      .catch(function () { /* offline for a moment: try again at the next tick */ });
  }
  window.setInterval(refresh, seconds * 1000);
}());
