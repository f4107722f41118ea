// beadbff's only script. It is loaded from /static with the page's CSP nonce and does three small things:
//   1. keeps a payment's status up to date: every [data-status-url] element polls its URL until the
//      status is final, and takes the updates live.js receives pushed ("beadbff:status" events); while
//      the push is live (data-live="push") polling is only a safety net, once a minute;
//   2. copy buttons: [data-copy-target=ID] copies the text of the element #ID;
//   3. demo logins: [data-fill-username] buttons fill the login form.
// The pages work without it; buttons that need it stay hidden until it runs. No eval, no inline code.
"use strict";

(function () {
  var FIRST_DELAY_MS = 2000;
  var MAX_DELAY_MS = 15000;
  var GROWTH = 1.5;
  var SAFETY_NET_MS = 60000; // the poll's pace while updates are pushed (live.js)
  var SESSION_ENDED = new Error("session ended");

  // --- 1. live payment status -------------------------------------------------------------------
  // The page renders three notes (waiting, paid, unpaid) and CSS shows the one named by data-state;
  // the badge's colour follows its data-status. So this code only sets words, never styles.
  function stateOf(s) {
    if (s.paid) return "paid";
    return s.final ? "unpaid" : "waiting";
  }

  function showHint(el, which) {
    el.querySelectorAll("[data-status-hint]").forEach(function (hint) {
      hint.hidden = hint.getAttribute("data-status-hint") !== which;
    });
  }

  function watchStatus(el) {
    var url = el.getAttribute("data-status-url");
    var badge = el.querySelector("[data-status]");
    if (!url || !badge || el.getAttribute("data-final") === "true") return;
    var delay = FIRST_DELAY_MS;
    var lastFetch = Date.now(); // the page itself is a fresh read
    function pushed() { return el.getAttribute("data-live") === "push"; }

    function schedule() {
      setTimeout(poll, pushed() ? SAFETY_NET_MS : delay);
      delay = Math.min(delay * GROWTH, MAX_DELAY_MS);
    }

    // apply shows a status, polled or pushed; it reports whether the status is final.
    function apply(s) {
      if (typeof s.statusCode !== "string" || s.statusCode === "") throw new Error("no statusCode");
      showHint(el, "");
      if (s.statusCode !== badge.getAttribute("data-status")) {
        badge.setAttribute("data-status", s.statusCode);
        badge.textContent = s.statusLabel || s.statusCode;
        delay = FIRST_DELAY_MS; // something is happening: look again soon
      }
      el.setAttribute("data-state", stateOf(s));
      el.setAttribute("data-final", s.final ? "true" : "false");
      return !!s.final;
    }
    el.addEventListener("beadbff:status", function (e) {
      try { apply(e.detail); } catch (err) { /* a malformed event changes nothing */ }
    });

    function poll() {
      if (el.getAttribute("data-final") === "true") return; // a pushed update finished it
      // Nobody is looking, or updates are pushed and the last read is recent: ask again later instead
      // of calling Bead for nothing.
      if (document.hidden || (pushed() && Date.now() - lastFetch < SAFETY_NET_MS)) {
        schedule();
        return;
      }
      lastFetch = Date.now();
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (res) {
          if (res.status === 401) throw SESSION_ENDED;
          if (!res.ok) throw new Error("status " + res.status);
          return res.json();
        })
        .then(function (s) {
          if (!apply(s)) schedule();
        })
        .catch(function (err) {
          if (err === SESSION_ENDED) { // the session is gone; polling on would only get more 401s
            showHint(el, "ended");
            el.setAttribute("data-state", "stopped"); // hides "This page updates by itself"
            return;
          }
          showHint(el, "reconnecting"); // keep the last known status and try again
          schedule();
        });
    }

    schedule();
  }

  // --- 2. copy buttons --------------------------------------------------------------------------
  function say(button, message) {
    var feedback = document.getElementById(button.getAttribute("data-copy-target") + "-copied");
    if (!feedback) return;
    feedback.textContent = message;
    clearTimeout(feedback.clearTimer);
    feedback.clearTimer = setTimeout(function () { feedback.textContent = ""; }, 4000);
  }

  // Without the Clipboard API (plain http on a host other than localhost) select the text instead,
  // so that one key press copies it.
  function selectText(target) {
    var range = document.createRange();
    range.selectNodeContents(target);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function setUpCopy(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = target.textContent.trim();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(
          function () { say(button, "Copied"); },
          function () { selectText(target); say(button, "Press Ctrl+C to copy"); }
        );
      } else {
        selectText(target);
        say(button, "Selected: press Ctrl+C to copy");
      }
    });
  }

  // --- 3. demo logins ---------------------------------------------------------------------------
  function setUpFill(button) {
    var username = document.getElementById("username");
    var password = document.getElementById("password");
    if (!username || !password) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      username.value = button.getAttribute("data-fill-username");
      password.value = button.getAttribute("data-fill-password");
      password.focus();
    });
  }

  function start() {
    document.querySelectorAll("[data-status-url]").forEach(watchStatus);
    document.querySelectorAll("[data-copy-target]").forEach(setUpCopy);
    document.querySelectorAll("[data-fill-username]").forEach(setUpFill);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
