/*! beadbff checkout embed helper. For merchant pages; see "Embedding the checkout" in beadbff's README.
 *
 *   <div data-beadbff-checkout="https://pay.example.com/embed/checkout/CHECKOUT_ID"></div>
 *   <script src="https://pay.example.com/embed/beadbff-embed.js" async></script>
 *
 * It puts an iframe (allow="payment") into each such element, keeps the frame as tall as the checkout,
 * and re-dispatches the checkout's status messages on the element as a DOM CustomEvent that bubbles:
 *
 *   el.addEventListener("beadbff:payment.status", function (e) {
 *     // e.detail: {trackingId, statusCode, final, paid}; fulfil the order when e.detail.paid
 *   });
 *
 * Messages are accepted only from the frame it created and only from the checkout's own origin.
 * BeadbffCheckout.mount(element, checkoutUrl) does the same from code and returns the iframe.
 */
(function () {
  "use strict";
  if (window.BeadbffCheckout) return;

  var MOUNTED = "data-beadbff-mounted";
  var MAX_HEIGHT = 4000;

  function mount(container, checkoutUrl) {
    var url = new URL(checkoutUrl, document.baseURI);
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new Error("beadbff: not a checkout URL: " + checkoutUrl);
    }
    // Tells the checkout where to post its messages; it is only believed if it is in FRAME_ANCESTORS.
    url.searchParams.set("parentOrigin", window.location.origin);

    var frame = document.createElement("iframe");
    frame.src = url.href;
    frame.title = container.getAttribute("data-beadbff-title") || "Payment";
    frame.allow = "payment";
    frame.style.display = "block";
    frame.style.width = "100%";
    frame.style.border = "0";
    frame.style.height = (container.getAttribute("data-beadbff-height") || "560") + "px";
    container.setAttribute(MOUNTED, "");
    container.appendChild(frame);

    window.addEventListener("message", function (event) {
      if (event.origin !== url.origin || event.source !== frame.contentWindow) return;
      var data = event.data;
      if (!data || typeof data !== "object") return;
      if (data.type === "beadbff:checkout.resize") {
        var h = Number(data.height);
        if (h > 0 && h <= MAX_HEIGHT) frame.style.height = Math.ceil(h) + "px";
      } else if (data.type === "beadbff:payment.status" && typeof data.statusCode === "string") {
        container.dispatchEvent(new CustomEvent("beadbff:payment.status", {
          bubbles: true,
          detail: {
            trackingId: String(data.trackingId || ""),
            statusCode: data.statusCode,
            final: data.final === true,
            paid: data.paid === true
          }
        }));
      }
    });
    return frame;
  }

  function mountAll() {
    document.querySelectorAll("[data-beadbff-checkout]").forEach(function (el) {
      if (!el.hasAttribute(MOUNTED)) mount(el, el.getAttribute("data-beadbff-checkout"));
    });
  }

  window.BeadbffCheckout = { mount: mount, mountAll: mountAll };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mountAll);
  } else {
    mountAll();
  }
})();
