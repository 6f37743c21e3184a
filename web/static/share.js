// "Share" on the invite page: the Web Share API where there is one, else copy the link.
(function () {
  "use strict";
  var button = document.getElementById("share-button");
  var input = document.getElementById("referral-link");
  var status = document.getElementById("share-status");
  if (!button || !input) return;
  function copied() { if (status) status.textContent = button.getAttribute("data-copied") || "Copied"; }
  button.addEventListener("click", function () {
    var url = input.value;
    if (navigator.share) {
      navigator.share({ title: input.getAttribute("data-share-title") || "", url: url }).catch(function () {});
      return;
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(url).then(copied, function () { input.select(); document.execCommand("copy"); copied(); });
    } else {
      input.select(); document.execCommand("copy"); copied();
    }
  });
})();
