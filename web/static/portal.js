/* Questline member portal: live refresh.
   Listens for Server-Sent Events on the member's channel and, when something changed, fetches the same
   page again and swaps in its <main> (server-rendered and escaped), animating progress bars from their
   old value to the new one. Without JavaScript or EventSource the page simply stays as rendered. */
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !window.EventSource || !window.fetch || !window.DOMParser) { return; }
  var status = document.getElementById("live-status");
  var busy = false;
  var again = false;

  function typing() {
    var el = document.activeElement;
    return el && main.contains(el) && /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName);
  }

  function swap(doc) {
    var fresh = doc.getElementById("main");
    if (!fresh) { return; }
    var before = {};
    main.querySelectorAll("progress[id]").forEach(function (bar) { before[bar.id] = bar.value; });
    var values = {};
    main.querySelectorAll("[data-progress]").forEach(function (el) { values[el.getAttribute("data-progress")] = el.textContent; });
    var nodes = Array.prototype.map.call(fresh.childNodes, function (node) { return document.importNode(node, true); });
    main.replaceChildren.apply(main, nodes);
    status = document.getElementById("live-status");
    main.querySelectorAll("progress[id]").forEach(function (bar) {
      if (before[bar.id] !== undefined && before[bar.id] !== bar.value) {
        var target = bar.value;
        bar.value = before[bar.id];
        window.requestAnimationFrame(function () { window.requestAnimationFrame(function () { bar.value = target; }); });
      }
    });
    main.querySelectorAll("[data-progress]").forEach(function (el) {
      var key = el.getAttribute("data-progress");
      if (values[key] !== undefined && values[key] !== el.textContent) {
        var card = el.closest("[data-challenge]");
        if (card) { card.classList.add("bump"); }
      }
    });
    var chip = document.querySelector("[data-live=balance]");
    var freshChip = doc.querySelector("[data-live=balance]");
    if (chip && freshChip) { chip.textContent = freshChip.textContent; }
    if (status) { status.textContent = main.getAttribute("data-updated-text") || ""; }
  }

  function refresh() {
    if (busy || typing()) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html) { swap(new DOMParser().parseFromString(html, "text/html")); } })
      .catch(function () { /* a failed refresh leaves the page as it was; the next update retries */ })
      .then(function () {
        busy = false;
        if (again) { again = false; window.setTimeout(refresh, 250); }
      });
  }

  var source = new EventSource(main.getAttribute("data-live-source"));
  source.addEventListener("update", refresh);
  source.addEventListener("ready", function () { document.documentElement.setAttribute("data-live", "on"); });
  source.addEventListener("error", function () { document.documentElement.setAttribute("data-live", "off"); });
})();
