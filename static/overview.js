// The live overview: redraws its numbers from each `snapshot` event of /admin/events and
// reloads the charts when the counts moved. EventSource reconnects by itself; while it is
// disconnected the page says so.
"use strict";
(function () {
  const STATES = ["SCHEDULED", "QUEUED", "ROUTING", "PROCESSING"];
  function cell(text) {
    const td = document.createElement("td");
    td.textContent = String(text);
    return td;
  }
  function setText(id, value) {
    const el = document.getElementById(id);
    if (el) el.textContent = String(value);
  }
  function draw(o) {
    setText("cometd-clients", o.cometd_clients);
    setText("agents-ready", o.agents.ready);
    setText("agents-not-ready", o.agents.not_ready);
    setText("agents-busy", o.agents.busy);
    setText("agents-logged-out", o.agents.logged_out);
    const services = document.querySelector("#services tbody");
    if (services) {
      services.replaceChildren(...Object.entries(o.services).map(([name, counts]) => {
        const tr = document.createElement("tr");
        tr.dataset.service = name;
        tr.append(cell(name));
        for (const s of STATES) {
          const td = cell(counts[s] || 0);
          td.dataset.state = s;
          tr.append(td);
        }
        return tr;
      }));
    }
    const queues = document.querySelector("#queues tbody");
    if (queues) {
      queues.replaceChildren(...o.queues.map((q) => {
        const tr = document.createElement("tr");
        tr.append(cell(q.name), cell(q.waiting), cell(q.oldest_wait_secs + " s"),
          cell(q.ewt_secs === null ? "—" : q.ewt_secs + " s"));
        return tr;
      }));
    }
  }
  // The charts change only when services were created or completed.
  function totals(o) {
    return JSON.stringify(o.services);
  }
  function reloadCharts() {
    for (const img of document.querySelectorAll("img.chart")) {
      const base = img.getAttribute("src").split("?")[0];
      img.setAttribute("src", base + "?t=" + Date.now());
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    const live = document.getElementById("live");
    const offline = document.getElementById("offline");
    let last = live && live.dataset.snapshot ? totals(JSON.parse(live.dataset.snapshot)) : null;
    const source = new EventSource("/admin/events");
    source.addEventListener("open", () => { offline.hidden = true; });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.OPEN) offline.hidden = false;
    });
    source.addEventListener("snapshot", (e) => {
      offline.hidden = true;
      const o = JSON.parse(e.data);
      draw(o);
      const now = totals(o);
      if (last !== null && now !== last) reloadCharts();
      last = now;
      document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
    });
  });
})();
