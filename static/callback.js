// One callback's page: the date-time pickers (reschedule, recreate) in the browser's time
// zone. The server renders each picker's value in UTC with the absolute time in data-utc;
// this script shows it in local time and, on submit, fills the form's hidden field with the
// picked time as UTC ISO 8601, which is what the server reads first. Without this script
// the server reads the picker's value as UTC (the page says so).
"use strict";
(function () {
  const pad = (n) => String(n).padStart(2, "0");
  // A Date as a datetime-local value (local time, minutes).
  const localValue = (d) =>
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

  for (const input of document.querySelectorAll("input[type=datetime-local][data-utc-field]")) {
    const form = input.form;
    const hidden = form.elements.namedItem(input.dataset.utcField);
    if (input.dataset.utc) {
      const at = new Date(input.dataset.utc);
      if (!isNaN(at)) input.value = localValue(at);
    }
    const label = form.querySelector(`label[for="${input.id}"] .tz-name`);
    if (label) label.textContent = `(${zone})`;
    form.addEventListener("submit", () => {
      // A datetime-local value without a zone is read by Date as local time.
      const at = input.value ? new Date(input.value) : null;
      hidden.value = at && !isNaN(at) ? at.toISOString() : "";
    });
  }
})();
