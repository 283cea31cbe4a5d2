// The Callbacks page: the browser's time zone for the filter, the custom range fields, the
// column chooser (kept in localStorage), row selection, bulk cancel with a progress bar and
// the report/CSV downloads. Every change goes through window.callbackd.api (CSRF header).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const tz = $("f-tz");
  if (tz && (tz.value === "0" || tz.value === "")) tz.value = String(new Date().getTimezoneOffset());

  // Custom range fields only for "Custom Date Range".
  const range = $("f-range");
  const showCustom = () => {
    for (const el of document.querySelectorAll(".custom-range")) el.hidden = range.value !== "custom";
  };
  if (range) { range.addEventListener("change", showCustom); showCustom(); }

  // Column chooser.
  const KEY = "callbackd.columns";
  const chooser = document.querySelectorAll("#column-chooser input[data-col]");
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(KEY) || "null"); } catch (_) { saved = null; }
  const apply = () => {
    for (const box of chooser) {
      for (const cell of document.querySelectorAll(`#callbacks [data-col="${CSS.escape(box.dataset.col)}"]`)) {
        cell.hidden = !box.checked;
      }
    }
  };
  for (const box of chooser) {
    if (saved && box.dataset.col in saved) box.checked = saved[box.dataset.col];
    box.addEventListener("change", () => {
      const state = saved || {};
      for (const b of chooser) state[b.dataset.col] = b.checked;
      saved = state;
      localStorage.setItem(KEY, JSON.stringify(state));
      apply();
    });
  }
  apply();

  // Selection.
  const picks = () => Array.from(document.querySelectorAll("#callbacks input.pick"));
  const selectAll = $("select-all");
  const cancelSelected = $("cancel-selected");
  const refresh = () => {
    if (cancelSelected) {
      const n = picks().filter((p) => p.checked).length;
      cancelSelected.disabled = n === 0;
      cancelSelected.textContent = n ? `Cancel ${n} selected` : "Cancel selected";
    }
  };
  if (selectAll) selectAll.addEventListener("change", () => { for (const p of picks()) p.checked = selectAll.checked; refresh(); });
  for (const p of picks()) p.addEventListener("change", refresh);

  // Bulk cancel.
  const bulk = $("bulk"), bar = $("bulk-progress"), result = $("bulk-result");
  const reportJson = $("report-json"), reportCsv = $("report-csv");
  let lastReport = [];
  const download = (blob, name) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  };
  const show = (report) => {
    lastReport = report;
    const count = (t) => report.filter((e) => e._ok_title === t).length;
    result.textContent = `${count("Ok")} cancelled, ${count("FAILURE_COMPLETED")} already completed, ${count("FAILURE_MISSING")} missing.`;
    reportJson.hidden = false;
    reportCsv.hidden = count("Ok") === 0;
  };
  const post = async (body) => {
    const data = await window.callbackd.api("POST", "/genesys/1/admin/callback/reportcancelled", body);
    return data.report;
  };
  const CHUNK = 100;
  if (cancelSelected) cancelSelected.addEventListener("click", async () => {
    const ids = picks().filter((p) => p.checked).map((p) => p.value);
    if (!ids.length || !confirm(`Cancel ${ids.length} callbacks?`)) return;
    bulk.hidden = false; bar.max = ids.length; bar.value = 0; result.textContent = "";
    const report = [];
    try {
      for (let i = 0; i < ids.length; i += CHUNK) {
        report.push(...await post({ ids: ids.slice(i, i + CHUNK) }));
        bar.value = Math.min(ids.length, i + CHUNK);
      }
    } catch (err) { result.textContent = String(err.message); }
    show(report);
  });
  const cancelAll = $("cancel-all");
  if (cancelAll) cancelAll.addEventListener("click", async () => {
    if (!confirm(cancelAll.dataset.confirm)) return;
    bulk.hidden = false; bar.removeAttribute("value"); result.textContent = "";
    const filter = {};
    for (const [k, v] of new URLSearchParams($("export-csv").dataset.query)) {
      (filter[k] = filter[k] || []).push(v);
    }
    try { show(await post({ filter })); bar.max = 1; bar.value = 1; }
    catch (err) { result.textContent = String(err.message); }
  });
  if (reportJson) reportJson.addEventListener("click", () =>
    download(new Blob([JSON.stringify(lastReport, null, 2)], { type: "application/json" }), "cancel-report.json"));
  if (reportCsv) reportCsv.addEventListener("click", async () => {
    const ids = lastReport.filter((e) => e._ok_title === "Ok").map((e) => e._id);
    const text = await window.callbackd.api("POST", "/genesys/1/admin/callbacks/export", { ids });
    download(new Blob([text], { type: "text/csv" }), "cancelled.csv");
  });
})();
