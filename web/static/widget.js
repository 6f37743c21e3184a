/* Questline widget loader: <script src="https://questline.example/static/widget.js"
     data-board="weekly-points" data-key="pk_live_…" data-theme="dark" data-accent="#ff5a36" data-rows="10"
     data-member="<signed member token>" async></script>
   (or data-widget="badges" with data-member for a badge shelf). Creates an isolated iframe right after the
   script tag and sizes it from the widget's own postMessage, accepting messages only from the widget's
   origin and from that very iframe. Several widgets may share one page. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) { return; }
  var widgetOrigin = new URL(script.src, window.location.href).origin;
  var data = script.dataset;
  var kind = data.widget === "badges" ? "badges" : "leaderboard";
  if (kind === "leaderboard" && !data.board) { return; }
  var path = kind === "badges" ? "/widgets/badges" : "/widgets/leaderboard/" + encodeURIComponent(data.board);
  var url = new URL(path, widgetOrigin);
  ["key", "theme", "accent", "font", "rows", "member", "lang", "scope", "transparent"].forEach(function (name) {
    if (data[name]) { url.searchParams.set(name, data[name]); }
  });
  url.searchParams.set("origin", window.location.origin);

  var frame = document.createElement("iframe");
  frame.src = url.toString();
  frame.title = data.title || (kind === "badges" ? "Badges" : "Leaderboard");
  frame.setAttribute("loading", "lazy");
  frame.setAttribute("referrerpolicy", "strict-origin-when-cross-origin");
  frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox");
  frame.style.width = "100%";
  frame.style.border = "0";
  frame.style.display = "block";
  frame.style.colorScheme = "normal";
  frame.style.height = (data.height || 360) + "px";
  frame.className = "questline-widget";
  script.parentNode.insertBefore(frame, script.nextSibling);

  window.addEventListener("message", function (event) {
    if (event.origin !== widgetOrigin || event.source !== frame.contentWindow) { return; }
    var message = event.data;
    if (!message || message.type !== "questline:resize") { return; }
    var height = Number(message.height);
    if (isFinite(height) && height > 0) { frame.style.height = Math.min(Math.ceil(height), 4000) + "px"; }
  });
})();
