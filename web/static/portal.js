/* Questline member portal: live refresh.
   Listens for Server-Sent Events on the member's channel and, when something changed, fetches the same
   page again and swaps in its <main> (server-rendered and escaped), animating progress bars from their
   old value to the new one. Focus stays on the same element across a swap (found again by id, link,
   form or position), and what changed is announced in a polite status region that lives outside <main>.
   Without JavaScript or EventSource the page simply stays as rendered. */
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !window.EventSource || !window.fetch || !window.DOMParser) { return; }
  var status = document.getElementById("live-status");
  var FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
  var busy = false;
  var again = false;
  var lastHtml = null;
  var announceTimer = null;

  function typing() {
    var el = document.activeElement;
    return el && main.contains(el) && /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName);
  }

  /* Where the focus is, as something that can be found again in the fresh <main>. */
  function focusMark() {
    var el = document.activeElement;
    if (!el || el === main || !main.contains(el)) { return null; }
    var mark = { id: el.id || null, tag: el.tagName, href: el.getAttribute("href"), text: el.textContent, index: -1 };
    var form = el.closest("form");
    mark.action = form ? form.getAttribute("action") : null;
    mark.index = Array.prototype.indexOf.call(main.querySelectorAll(FOCUSABLE), el);
    return mark;
  }

  function findMark(mark) {
    if (mark.id) { var byId = document.getElementById(mark.id); if (byId && main.contains(byId)) { return byId; } }
    var all = Array.prototype.slice.call(main.querySelectorAll(FOCUSABLE));
    var same = all.filter(function (el) {
      if (el.tagName !== mark.tag) { return false; }
      if (mark.href !== null) { return el.getAttribute("href") === mark.href; }
      var form = el.closest("form");
      return mark.action !== null && form && form.getAttribute("action") === mark.action;
    });
    if (same.length) { return same[0]; }
    return all[Math.min(mark.index, all.length - 1)] || main;
  }

  function restoreFocus(mark) {
    if (!mark) { return; }
    var el = findMark(mark);
    if (el && el !== document.activeElement) {
      try { el.focus({ preventScroll: true }); } catch (e) { el.focus(); }
    }
  }

  /* New text is written at once; the same text again is cleared first and written a moment later, so a
     screen reader announces it again. */
  function announce(text) {
    if (!status || !text) { return; }
    if (announceTimer) { window.clearTimeout(announceTimer); announceTimer = null; }
    if (status.textContent !== text) { status.textContent = text; return; }
    status.textContent = "";
    announceTimer = window.setTimeout(function () { status.textContent = text; announceTimer = null; }, 150);
  }

  function pointsMessage(delta, balanceText) {
    var lang = status.getAttribute("data-lang") || document.documentElement.lang || "en";
    var form = "other";
    try { form = new Intl.PluralRules(lang).select(Math.abs(delta)) === "one" ? "one" : "other"; } catch (e) { form = Math.abs(delta) === 1 ? "one" : "other"; }
    var amount = Math.abs(delta).toLocaleString(lang);
    var signed = (delta > 0 ? "+" : "\u2212") + amount;
    return (status.getAttribute("data-points-" + form) || "").replace("{delta}", signed).replace("{balance}", balanceText);
  }

  function swap(doc) {
    var fresh = doc.getElementById("main");
    if (!fresh) { return; }
    var chip = document.querySelector("[data-live=balance]");
    var freshChip = doc.querySelector("[data-live=balance]");
    var delta = 0;
    if (chip && freshChip) {
      delta = Number(freshChip.getAttribute("data-value")) - Number(chip.getAttribute("data-value"));
      chip.textContent = freshChip.textContent;
      chip.setAttribute("data-value", freshChip.getAttribute("data-value"));
    }
    var bell = document.querySelector("[data-live=unread]");
    var freshBell = doc.querySelector("[data-live=unread]");
    if (bell && freshBell && bell.getAttribute("data-value") !== freshBell.getAttribute("data-value")) {
      bell.innerHTML = freshBell.innerHTML;
      bell.setAttribute("data-value", freshBell.getAttribute("data-value"));
    }
    var changed = fresh.innerHTML !== lastHtml;
    lastHtml = fresh.innerHTML;
    if (changed) {
      var mark = focusMark();
      var before = {};
      main.querySelectorAll("progress[id]").forEach(function (bar) { before[bar.id] = bar.value; });
      var values = {};
      main.querySelectorAll("[data-progress]").forEach(function (el) { values[el.getAttribute("data-progress")] = el.textContent; });
      var nodes = Array.prototype.map.call(fresh.childNodes, function (node) { return document.importNode(node, true); });
      main.replaceChildren.apply(main, nodes);
      restoreFocus(mark);
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
    }
    if (delta && chip) { announce(pointsMessage(delta, chip.textContent)); }
    else if (changed && status) { announce(status.getAttribute("data-updated")); }
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

  lastHtml = main.innerHTML;
  var source = new EventSource(main.getAttribute("data-live-source"));
  source.addEventListener("update", refresh);
  source.addEventListener("ready", function () { document.documentElement.setAttribute("data-live", "on"); });
  source.addEventListener("error", function () { document.documentElement.setAttribute("data-live", "off"); });
})();
