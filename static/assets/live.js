// Live updates pushed by the server (server-sent events), for the payment page, the dashboard and the
// embedded checkout. Loaded with the page's CSP nonce; connect-src 'self' covers the stream.
//
// Every [data-events-url] element opens an EventSource on its URL. The server's first event, "hello",
// says whether Bead's webhooks reach this server for the terminal ({"push": true}); then the element is
// marked data-live="push" and the page's own poller (app.js, embed.js) slows to a once-a-minute safety
// net. Each "status" event is handed to that poller's code as a "beadbff:status" DOM event, so one piece
// of code draws a status however it arrived; on the dashboard, rows are updated here. When the stream
// fails the browser reconnects by itself, and meanwhile data-live is not "push", so the poller is in
// charge again. Without EventSource nothing here runs and polling goes on as before.
"use strict";

(function () {
  if (typeof window.EventSource !== "function") return;

  function parse(data) {
    try {
      return JSON.parse(data);
    } catch (e) {
      return null;
    }
  }

  // A webhook announced a status that Bead has not confirmed yet: say so next to the current one. (The
  // checkout draws an announced payment its own way, in embed.js, from the same event.)
  function showConfirming(root, s) {
    root.querySelectorAll('[data-live-hint="confirming"]').forEach(function (hint) {
      hint.hidden = !s.confirming;
      var label = hint.querySelector("[data-pending-label]");
      if (label) label.textContent = s.pendingLabel || "";
    });
    root.setAttribute("data-confirming", s.confirming ? "true" : "false");
  }

  function updateRow(table, s) {
    var row = null;
    table.querySelectorAll("tr[data-tracking-id]").forEach(function (tr) {
      if (tr.getAttribute("data-tracking-id") === s.trackingId) row = tr;
    });
    if (!row) return; // a payment not on this page (created since): the next visit lists it
    row.querySelectorAll(".badge[data-status]").forEach(function (badge) {
      badge.setAttribute("data-status", s.statusCode);
      badge.textContent = s.statusLabel || s.statusCode;
    });
    var note = row.querySelector("[data-live-confirming]");
    if (s.confirming && !note) {
      note = document.createElement("span");
      note.className = "cell-sub";
      note.setAttribute("data-live-confirming", "");
      var cell = row.querySelector(".col-status") || row.lastElementChild;
      cell.appendChild(note);
    }
    if (note) {
      note.textContent = s.confirming ? "Reported “" + (s.pendingLabel || "") + "”; confirming…" : "";
      if (!s.confirming) note.remove();
    }
    row.setAttribute("data-status", s.statusCode);
  }

  function watch(root) {
    var url = root.getAttribute("data-events-url");
    var single = root.tagName !== "TABLE"; // one payment (its page or checkout), not the dashboard
    if (!url || (single && root.getAttribute("data-final") === "true")) return;
    var received = 0;
    var source = new EventSource(url);
    root.setAttribute("data-live", "connecting");

    source.addEventListener("hello", function (ev) {
      var hello = parse(ev.data);
      root.setAttribute("data-live", hello && hello.push ? "push" : "open");
    });

    source.addEventListener("status", function (ev) {
      var s = parse(ev.data);
      if (!s || typeof s.statusCode !== "string" || s.statusCode === "") return;
      received++;
      root.setAttribute("data-live-events", String(received)); // for tests and the curious
      if (!single) {
        updateRow(root, s);
        return;
      }
      showConfirming(root, s);
      root.dispatchEvent(new CustomEvent("beadbff:status", { detail: s }));
      if (s.final && !s.confirming) { // nothing more will change
        source.close();
        root.setAttribute("data-live", "done");
      }
    });

    source.addEventListener("error", function () {
      // The browser retries by itself unless the server said there is nothing more (204) or refused
      // (401: the session ended; the poller will say so).
      root.setAttribute("data-live", source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
    });
  }

  function start() {
    document.querySelectorAll("[data-events-url]").forEach(watch);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
