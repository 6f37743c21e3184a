/* Questline widget (runs inside the widget's iframe).
   1. Tells the embedding page its height (postMessage to the exact, server-validated parent origin; never "*").
   2. Stays live: a Server-Sent Events stream says "update"; the widget fetches itself again and swaps the
      rows, sliding each row from its old place to its new one (FLIP) and flashing rows whose score moved.
   Content always comes from the server's escaped HTML; nothing from the stream is inserted. */
(function () {
  "use strict";
  var body = document.body;
  var parentOrigin = body.getAttribute("data-parent-origin");
  var lastHeight = 0;

  function postHeight() {
    if (!parentOrigin || window.parent === window) { return; }
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height !== lastHeight) {
      lastHeight = height;
      window.parent.postMessage({ type: "questline:resize", height: height }, parentOrigin);
    }
  }
  if (window.ResizeObserver) { new ResizeObserver(postHeight).observe(document.documentElement); }
  window.addEventListener("load", postHeight);
  postHeight();

  var region = document.getElementById("rows-region");
  var source = body.getAttribute("data-live-source");
  if (!region || !source || !window.EventSource || !window.fetch || !window.DOMParser) { return; }
  var state = document.getElementById("live-state");
  var status = document.getElementById("live-status");
  var busy = false;
  var again = false;

  /* The status line only ever says that the widget updated; the same text is cleared first so that it is
     announced again. */
  var announceTimer = null;
  function announce(text) {
    if (!status || !text) { return; }
    if (announceTimer) { window.clearTimeout(announceTimer); announceTimer = null; }
    if (status.textContent !== text) { status.textContent = text; return; }
    status.textContent = "";
    announceTimer = window.setTimeout(function () { status.textContent = text; announceTimer = null; }, 150);
  }

  function positions() {
    var found = {};
    region.querySelectorAll("[data-row]").forEach(function (el) {
      found[el.getAttribute("data-row")] = { top: el.getBoundingClientRect().top, score: el.getAttribute("data-score") };
    });
    return found;
  }

  function swap(doc) {
    var fresh = doc.getElementById("rows-region");
    if (!fresh) { return; }
    var before = positions();
    var nodes = Array.prototype.map.call(fresh.childNodes, function (node) { return document.importNode(node, true); });
    region.replaceChildren.apply(region, nodes);
    var motion = !window.matchMedia || !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    region.querySelectorAll("[data-row]").forEach(function (el) {
      var old = before[el.getAttribute("data-row")];
      if (!old) { el.classList.add("bump"); return; }
      if (old.score !== el.getAttribute("data-score")) { el.classList.add("bump"); }
      var delta = old.top - el.getBoundingClientRect().top;
      if (motion && delta && el.animate) {
        el.animate([{ transform: "translateY(" + delta + "px)" }, { transform: "translateY(0)" }], {
          duration: 600,
          easing: "cubic-bezier(.2,.8,.2,1)"
        });
      }
    });
    /* Lines outside the rows that the server may have changed (e.g. "3 more to earn"), copied as text. */
    document.querySelectorAll("[data-live-copy][id]").forEach(function (el) {
      var freshLine = doc.getElementById(el.id);
      if (freshLine) { el.textContent = freshLine.textContent; }
    });
    announce(body.getAttribute("data-updated-text") || "");
    postHeight();
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "omit", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html) { swap(new DOMParser().parseFromString(html, "text/html")); } })
      .catch(function () { /* keep the rows as they are; the next update retries */ })
      .then(function () {
        busy = false;
        if (again) { again = false; window.setTimeout(refresh, 200); }
      });
  }

  var stream = new EventSource(source);
  stream.addEventListener("ready", function () {
    if (state) { state.classList.add("on"); }
    body.setAttribute("data-live", "on");
  });
  stream.addEventListener("update", refresh);
  stream.addEventListener("error", function () {
    if (state) { state.classList.remove("on"); }
    body.setAttribute("data-live", "off");
  });
})();
