/* The purchase form in the page: "Add a line" and "Remove" change the lines without a round trip
   (the form's <template data-line-template> is the new line), the lines are renumbered, and the
   form says "lines-changed" so htmx asks for the running total again. While the purchase is
   recorded (a stored-value payment checks the member's PIN first) the form says so and its
   button waits. Without script the same buttons ask the server, which answers with the form.
   No inline script; nothing evaluated. */
(function () {
  "use strict";

  function purchaseForm(el) { return el && el.closest ? el.closest("form[data-purchase-form]") : null; }
  function lines(form) { return form.querySelector("[data-lines]"); }

  function renumber(form) {
    lines(form).querySelectorAll("tr[data-line]").forEach(function (row, i) {
      var n = String(i + 1);
      var cell = row.querySelector("[data-line-no]");
      if (cell) cell.textContent = n;
      row.querySelectorAll("[data-label]").forEach(function (el) {
        el.setAttribute("aria-label", el.getAttribute("data-label").replace("{n}", n));
      });
    });
  }

  function changed(form) {
    renumber(form);
    form.dispatchEvent(new Event("lines-changed", { bubbles: true }));
  }

  function addLine(form) {
    var body = lines(form);
    var template = form.querySelector("template[data-line-template]");
    var rows = body.querySelectorAll("tr[data-line]");
    if (!template || rows.length >= parseInt(body.getAttribute("data-max"), 10)) return;
    var next = 0;
    rows.forEach(function (row) { next = Math.max(next, parseInt(row.getAttribute("data-line"), 10) || 0); });
    next += 1;
    var row = template.content.firstElementChild.cloneNode(true);
    row.setAttribute("data-line", String(next));
    row.querySelectorAll("[name]").forEach(function (el) { el.name = el.name.replace("__N__", String(next)); });
    row.querySelectorAll("[value='__N__']").forEach(function (el) { el.value = String(next); });
    body.appendChild(row);
    changed(form);
    var first = row.querySelector("input");
    if (first) first.focus();
  }

  function removeLine(form, row) {
    var body = lines(form);
    if (body.querySelectorAll("tr[data-line]").length > 1) {
      row.remove();
    } else {
      row.querySelectorAll("input").forEach(function (el) {
        if (el.type === "checkbox") el.checked = false;
        else el.value = el.name.indexOf("qty_") === 0 ? "1" : "";
      });
    }
    changed(form);
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest ? ev.target.closest("[data-add-line], [data-remove-line]") : null;
    var form = purchaseForm(button);
    if (!form) return;
    ev.preventDefault();
    if (button.hasAttribute("data-add-line")) addLine(form);
    else removeLine(form, button.closest("tr[data-line]"));
  });

  document.addEventListener("submit", function (ev) {
    var form = purchaseForm(ev.target);
    var submitter = ev.submitter;
    if (!form || ev.defaultPrevented || (submitter && !submitter.hasAttribute("data-record"))) return;
    form.setAttribute("aria-busy", "true");
    var busy = form.querySelector("[data-busy]");
    if (busy) busy.hidden = false;
    if (submitter) setTimeout(function () { submitter.disabled = true; }, 0);  // after the form is sent
  });

  // With script the total follows the typing, so its button is not needed.
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-purchase-form] [data-quote-button]").forEach(function (b) { b.hidden = true; });
  });
})();
