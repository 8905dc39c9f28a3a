/* The navigation: one group menu open at a time, closed by a click elsewhere or Escape; on a
   narrow screen the whole navigation folds behind the "Menu" button. No inline script. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  function groups() { return document.querySelectorAll("header details.navgroup"); }
  document.addEventListener("toggle", function (ev) {
    var opened = ev.target;
    if (!(opened instanceof HTMLDetailsElement) || !opened.classList.contains("navgroup") || !opened.open) return;
    groups().forEach(function (d) { if (d !== opened) d.open = false; });
  }, true);
  document.addEventListener("click", function (ev) {
    var toggle = ev.target.closest && ev.target.closest(".menu-toggle");
    if (toggle) {
      var header = toggle.closest("header");
      var open = header.classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      return;
    }
    if (!ev.target.closest || !ev.target.closest("details.navgroup")) {
      groups().forEach(function (d) { d.open = false; });
    }
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") groups().forEach(function (d) { d.open = false; });
  });
})();
