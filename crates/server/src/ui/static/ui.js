// Waybill dashboard: small improvements on pages that work without this script.
// 1. Times are rendered in UTC by the server; show them in the reader's own time zone too.
// 2. A submitted form's buttons are disabled so that a double click sends it once.
(function () {
  "use strict";
  var format;
  try {
    format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  } catch (e) {
    format = null;
  }
  if (format) {
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime()) || el.getAttribute("datetime").length < 11) return;
      el.title = el.textContent;
      el.textContent = format.format(when);
    });
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.disabled = true;
        b.setAttribute("aria-busy", "true");
      });
    }, 0);
  });
})();
