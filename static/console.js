// Shared by every console page: local times, confirmations, and the CSRF token for scripts.
"use strict";
(function () {
  const csrf = document.body.dataset.csrf || "";
  // Times are sent as ISO 8601 in UTC; people read them in their browser's time zone.
  function localTimes(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      const when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) el.textContent = when.toLocaleString();
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    localTimes(document);
    for (const form of document.querySelectorAll("form[data-confirm]")) {
      form.addEventListener("submit", (e) => {
        if (!window.confirm(form.dataset.confirm)) e.preventDefault();
      });
    }
  });
  // For page scripts: a JSON call with the session cookie and the CSRF token.
  async function api(method, path, body) {
    const headers = { "X-CSRF-Token": csrf };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
    if (!response.ok) {
      const message = data && data.message ? data.message : response.status + " " + response.statusText;
      throw new Error(message);
    }
    return data;
  }
  window.callbackd = { csrf, api, localTimes };
})();
