/* Long text fields show their limit: under every textarea, and every text input of 100 characters
   or more, a counter "12 / 500" that follows the typing and is tied to the field for screen
   readers (aria-describedby). The field's maxlength is the server's own limit, and the server
   refuses what is over it with a message next to the field; nothing is cut without saying so.
   Fields that arrive later (htmx swaps) get their counter too; data-no-counter opts a field out
   (a table's short cells). No inline script. */
(function () {
  "use strict";
  var LONG = 100;
  var seq = 0;

  function counted(el) {
    var max = parseInt(el.getAttribute("maxlength"), 10);
    if (!(max > 0) || el.hasAttribute("data-limit-shown") || el.hasAttribute("data-no-counter")) return 0;
    if (el.tagName === "TEXTAREA") return max;
    var type = (el.getAttribute("type") || "text").toLowerCase();
    return (type === "text" || type === "search") && max >= LONG ? max : 0;
  }

  function wire(root) {
    if (!root || !root.querySelectorAll) return;
    root.querySelectorAll("textarea[maxlength], input[maxlength]").forEach(function (el) {
      var max = counted(el);
      if (!max) return;
      el.setAttribute("data-limit-shown", "");
      var out = document.createElement("small");
      out.className = "limit";
      out.id = "limit-" + (++seq);
      out.setAttribute("data-limit-for", el.name || "");
      var described = el.getAttribute("aria-describedby");
      el.setAttribute("aria-describedby", (described ? described + " " : "") + out.id);
      function update() {
        var n = el.value.length;
        out.textContent = n + " / " + max;
        out.classList.toggle("near", n >= max * 0.9);
      }
      el.addEventListener("input", update);
      update();
      el.insertAdjacentElement("afterend", out);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:load", function (ev) { wire(ev.detail && ev.detail.elt); });
})();
