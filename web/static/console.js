/* Questline console: small conveniences on top of plain forms (everything works without them).
   - In the challenge form, show only the inputs the chosen rule type uses.
   - "Copy" buttons next to embed snippets and secrets. */
(function () {
  "use strict";
  var type = document.getElementById("f-ch_type");
  function sync() {
    document.querySelectorAll("[data-rule-types]").forEach(function (box) {
      var shown = box.getAttribute("data-rule-types").split(" ").indexOf(type.value) !== -1;
      box.hidden = !shown;
    });
  }
  if (type) {
    type.addEventListener("change", sync);
    sync();
  }
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(source.textContent || source.value || "").then(function () {
        var label = button.textContent;
        button.textContent = button.getAttribute("data-copied") || "✓";
        window.setTimeout(function () { button.textContent = label; }, 1500);
      });
    });
  });
})();
