// Warns before the session idles out, and lets the user stay logged in (WCAG 2.2.1 Timing
// Adjustable): the server says how long the session has; at least 20 seconds before it ends (two
// minutes when it can), an alert dialog says so with a "Stay logged in" button, which records a
// use on the server. When it has ended, the dialog says so and keeps what was typed on the page.
(function () {
  "use strict";
  const box = document.getElementById("session-warning");
  if (!box) { return; }
  const text = document.getElementById("session-warning-text");
  const button = document.getElementById("session-extend");
  const login = document.getElementById("session-login");
  let deadline = 0;
  let warnTimer = 0;
  let tickTimer = 0;
  let returnFocus = null;

  function left() { return Math.max(0, Math.round((deadline - Date.now()) / 1000)); }

  function schedule(secondsLeft) {
    deadline = Date.now() + secondsLeft * 1000;
    const lead = Math.min(120, Math.max(20, secondsLeft - 5));
    window.clearTimeout(warnTimer);
    window.clearInterval(tickTimer);
    warnTimer = window.setTimeout(warn, Math.max(0, secondsLeft - lead) * 1000);
  }

  function say() {
    const seconds = left();
    if (seconds > 0) {
      text.textContent = "You have not used the app for a while: you will be logged out in " + seconds +
        " seconds. Anything not yet saved will be lost.";
      return;
    }
    window.clearInterval(tickTimer);
    text.textContent = "You have been logged out for inactivity. What you typed is still on this page: " +
      "copy it before you log in again.";
    button.hidden = true;
    login.hidden = false;
  }

  function warn() {
    returnFocus = document.activeElement;
    box.hidden = false;
    say();
    tickTimer = window.setInterval(say, 1000);
    button.focus();
  }

  function ended() {
    deadline = Date.now();
    box.hidden = false;
    say();
  }

  button.addEventListener("click", function () {
    fetch("/session/extend", {
      method: "POST", credentials: "same-origin",
      headers: {"Accept": "application/json"},
      body: new URLSearchParams({csrf: box.dataset.csrf}),
    }).then(function (response) {
      if (!response.ok) { ended(); return null; }
      return response.json();
    }).then(function (body) {
      if (!body) { return; }
      box.hidden = true;
      window.clearInterval(tickTimer);
      schedule(body.seconds_left);
      if (returnFocus && typeof returnFocus.focus === "function") { returnFocus.focus(); }
    }).catch(ended);
  });

  schedule(Number(box.dataset.secondsLeft));
})();
