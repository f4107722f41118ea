// The embedded checkout's script (/embed/checkout/{id}), loaded with the page's CSP nonce. It:
//   1. keeps the status current: polls the page's status URL until the payment is final, and takes the
//      updates live.js receives pushed ("beadbff:status" events); while the push is live
//      (data-live="push") polling is only a safety net, once a minute;
//   2. tells the embedding page: every status it shows is posted to the parent window as
//      {type: "beadbff:payment.status", trackingId, statusCode, final, paid}, and the page's height as
//      {type: "beadbff:checkout.resize", height}, always with the parent's origin as the target, which
//      the server put in data-parent-origin only after finding it in FRAME_ANCESTORS. Never "*": another
//      page that managed to host the frame would otherwise read the shopper's payment.
// It sends no cookie and needs none. The page works without it: the pay button and QR code are plain HTML.
"use strict";

(function () {
  var FIRST_DELAY_MS = 2000;
  var MAX_DELAY_MS = 15000;
  var GROWTH = 1.5;
  var SAFETY_NET_MS = 60000; // the poll's pace while updates are pushed (live.js)

  var root = document.querySelector("[data-checkout]");
  if (!root) return;
  var parentOrigin = root.getAttribute("data-parent-origin") || "";
  var framed = window.parent && window.parent !== window;

  function tell(message) {
    if (!framed || !parentOrigin) return;
    try {
      window.parent.postMessage(message, parentOrigin);
    } catch (e) {
      // A malformed origin cannot happen (the server checked it); an exception must not stop the page.
    }
  }

  // --- height, so that the embedding page can fit the frame to the content -------------------------
  var lastHeight = 0;
  function reportHeight() {
    var height = Math.ceil(document.body.getBoundingClientRect().height);
    if (height > 0 && height !== lastHeight) {
      lastHeight = height;
      tell({ type: "beadbff:checkout.resize", height: height });
    }
  }

  // --- status ---------------------------------------------------------------------------------------
  var badge = root.querySelector("[data-status]");
  var url = root.getAttribute("data-status-url");
  var trackingId = root.getAttribute("data-tracking-id") || "";

  function stateOf(s) {
    if (s.paid) return "paid";
    return s.final ? "unpaid" : "waiting";
  }

  function showHint(which) {
    root.querySelectorAll("[data-status-hint]").forEach(function (hint) {
      hint.hidden = hint.getAttribute("data-status-hint") !== which;
    });
  }

  function announce(s) {
    tell({
      type: "beadbff:payment.status",
      trackingId: trackingId,
      statusCode: s.statusCode,
      final: !!s.final,
      paid: !!s.paid
    });
  }

  function show(s) {
    if (badge) {
      badge.setAttribute("data-status", s.statusCode);
      badge.textContent = s.statusLabel || s.statusCode;
    }
    root.setAttribute("data-status-code", s.statusCode);
    root.setAttribute("data-state", stateOf(s));
    root.setAttribute("data-final", s.final ? "true" : "false");
    root.setAttribute("data-paid", s.paid ? "true" : "false");
  }

  // A verified webhook said the payment was made and Bead has not confirmed it yet: no "Pay now" (the
  // style sheet hides it under data-pending-paid), and this hint instead of live.js's general
  // "confirming" one. Polled and pushed statuses both carry pendingPaid (pushed ones only when true).
  function showPendingPaid(on) {
    root.setAttribute("data-pending-paid", on ? "true" : "false");
    root.querySelectorAll("[data-live-hint]").forEach(function (hint) {
      var which = hint.getAttribute("data-live-hint");
      if (which === "confirming-paid") hint.hidden = !on;
      else if (which === "confirming" && on) hint.hidden = true;
    });
  }

  // update shows a status, polled or pushed, and tells the parent when it changed.
  function update(s) {
    if (typeof s.statusCode !== "string" || s.statusCode === "") throw new Error("no statusCode");
    showHint("");
    showPendingPaid(s.pendingPaid === true && !s.final);
    var changed = s.statusCode !== root.getAttribute("data-status-code");
    if (changed) {
      show(s);
      announce(s);
    }
    return changed;
  }

  function watch() {
    var delay = FIRST_DELAY_MS;
    var lastFetch = Date.now(); // the page itself is a fresh read
    function pushed() { return root.getAttribute("data-live") === "push"; }
    function schedule() {
      setTimeout(poll, pushed() ? SAFETY_NET_MS : delay);
      delay = Math.min(delay * GROWTH, MAX_DELAY_MS);
    }
    root.addEventListener("beadbff:status", function (e) {
      try {
        if (update(e.detail)) delay = FIRST_DELAY_MS;
      } catch (err) { /* a malformed event changes nothing */ }
    });
    function poll() {
      if (root.getAttribute("data-final") === "true") return; // a pushed update finished it
      if (pushed() && Date.now() - lastFetch < SAFETY_NET_MS) {
        schedule();
        return;
      }
      lastFetch = Date.now();
      fetch(url, { credentials: "omit", cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (res) {
          if (!res.ok) throw new Error("status " + res.status);
          return res.json();
        })
        .then(function (s) {
          if (update(s)) delay = FIRST_DELAY_MS; // something is happening: look again soon
          if (!s.final) schedule();
        })
        .catch(function () {
          showHint("reconnecting"); // keep the last known status and try again
          schedule();
        });
    }
    schedule();
  }

  function start() {
    if (badge && trackingId) {
      var initial = {
        statusCode: root.getAttribute("data-status-code") || "",
        final: root.getAttribute("data-final") === "true",
        paid: root.getAttribute("data-paid") === "true"
      };
      if (initial.statusCode) announce(initial);
      if (url && !initial.final) watch();
    }
    reportHeight();
    if (window.ResizeObserver) {
      new ResizeObserver(reportHeight).observe(document.body);
    } else {
      window.addEventListener("resize", reportHeight);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
