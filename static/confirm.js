/* Asks before an irreversible step. A submit button (or a form) with data-confirm="question"
   opens the page's <dialog id="confirm-dialog">; only "Confirm" lets the form go (plain or htmx).
   No inline script, nothing evaluated: the CSP stays "script-src 'self'". Without script the
   form is sent as before; the server's checks are the same either way. */
(function () {
  "use strict";
  var passed = null; // the button (or form) whose confirmation was just given

  function dialog() { return document.getElementById("confirm-dialog"); }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var button = ev.submitter || null;
    var question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    var dlg = dialog();
    if (!question || !dlg || typeof dlg.showModal !== "function") return;
    var source = button || form;
    if (passed === source) { passed = null; return; }
    ev.preventDefault();
    ev.stopImmediatePropagation();
    dlg.querySelector("[data-confirm-text]").textContent = question;
    dlg.returnValue = "";
    dlg.onclose = function () {
      if (dlg.returnValue !== "ok") return;
      passed = source;
      if (typeof form.requestSubmit === "function") form.requestSubmit(button || undefined);
      else form.submit();
    };
    dlg.showModal();
  }, true);
})();
