// The agent desktop (/agent/): keeps the page live from the `snapshot` events of
// /agent/events and acts through the desktop API (/genesys/1/agent/{agent}/...) with the
// session's CSRF token (console.js's `callbackd.api`).
//
// - State: Ready / Not Ready (optional reason code) / Log Out, and the time in the state.
// - Interactions: one tab each (ARIA tabs, arrow keys move between them). A new one beeps
//   and shows a browser notification when allowed. Chats fetch their new transcript events
//   when the snapshot's transcript position passes what the page has; voice callbacks show
//   the number to dial and the outcome buttons.
// - History: today's handled interactions (since local midnight), reloaded when the
//   snapshot's history version moves.
// - Offline: while the event stream is down a banner says so, until the next snapshot. A
//   stream that goes silent (no snapshot and no `ping` for 2.5 keep-alive intervals: a
//   half-open connection, a proxy that stopped forwarding) counts as down: the page shows
//   the banner, closes it and connects again.
"use strict";
(function () {
  const body = document.body;
  const AGENT = body.dataset.agent;
  const API = "/genesys/1/agent/" + encodeURIComponent(AGENT);
  const STATE_LABELS = { ready: "Ready", not_ready: "Not Ready", logged_out: "Logged out" };
  const STATUS_LABELS = {
    reserved: "Reserved: waiting for the customer",
    invited: "Waiting for you to accept",
    active: "In progress",
  };
  const OUTCOME_LABELS = {
    connected: "Connected", no_answer: "No answer", busy: "Busy", wrong_number: "Wrong number",
  };
  /** How long after the last key press the agent counts as no longer typing. */
  const TYPING_IDLE_MS = 3000;

  const api = (method, path, data) => window.callbackd.api(method, API + path, data);
  const $ = (id) => document.getElementById(id);

  /** The agent as last seen: `{state, reason, since, auto_answer}`. */
  let agent = {
    state: body.dataset.state,
    reason: body.dataset.reason || null,
    since: body.dataset.since,
    auto_answer: body.dataset.autoAnswer === "true",
  };
  /** The interactions on the page, by service id. */
  const works = new Map();
  let selected = null;
  let historyVersion;

  // ---- small helpers ----

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  /** `1:05`, `1:02:03`. */
  function duration(secs) {
    secs = Math.max(0, Math.floor(secs));
    const h = Math.floor(secs / 3600);
    const m = Math.floor((secs % 3600) / 60);
    const s = String(secs % 60).padStart(2, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  /** The server's clock minus the browser's, from the snapshots' `now`. */
  let skewMs = 0;

  function secondsSince(iso) {
    const when = Date.parse(iso);
    return isNaN(when) ? 0 : (Date.now() + skewMs - when) / 1000;
  }

  function announce(text) {
    $("announce").textContent = text;
  }

  function showError(node, error) {
    node.textContent = error ? String(error.message || error) : "";
    node.hidden = !error;
  }

  function count(name) {
    body.dataset[name] = String(Number(body.dataset[name] || 0) + 1);
  }

  // ---- sound and notifications ----

  let audio = null;
  // Browsers start audio only after the person touched the page: the context is made then.
  function unlockAudio() {
    if (!audio && window.AudioContext) audio = new AudioContext();
    if (audio && audio.state === "suspended") audio.resume();
  }
  function beep() {
    if (!audio || audio.state !== "running") return;
    const now = audio.currentTime;
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, now);
    gain.gain.exponentialRampToValueAtTime(0.001, now + 0.35);
    tone.connect(gain).connect(audio.destination);
    tone.start(now);
    tone.stop(now + 0.35);
    count("beeps");
  }
  function notify(title, text) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      const note = new Notification(title, { body: text, tag: "callbackd-desktop" });
      note.addEventListener("click", () => window.focus());
      count("notifications");
    } catch (_) {
      // Some browsers allow notifications only from a service worker: the beep remains.
    }
  }
  function offerNotifications() {
    const button = $("allow-notifications");
    if (!("Notification" in window) || Notification.permission !== "default") return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      await Notification.requestPermission();
      button.hidden = Notification.permission === "default";
    });
  }

  // ---- the agent's state ----

  function drawAgent() {
    const label = $("state-label");
    label.textContent = STATE_LABELS[agent.state] || agent.state;
    label.className = "badge " + ({ ready: "ok", not_ready: "warn" }[agent.state] || "");
    $("go-ready").disabled = agent.state === "ready";
    $("go-not-ready").disabled = agent.state === "not_ready" && !$("reason").value.trim();
    $("go-logged-out").disabled = agent.state === "logged_out";
    const reason = $("state-reason");
    const code = agent.reason;
    reason.hidden = !(agent.state === "not_ready" && code);
    reason.textContent = code ? "Reason code: " + code : "";
    tick();
  }

  function tick() {
    $("state-time").textContent = duration(secondsSince(agent.since));
    for (const work of works.values()) drawWaiting(work);
  }

  async function setState(state) {
    // The reason code is stored with the state, and every desktop of the agent shows it.
    const reason = state === "not_ready" ? $("reason").value.trim() : "";
    try {
      const answer = await api("POST", "/state", reason ? { state, reason } : { state });
      agent = { ...agent, state: answer.state, reason: answer.reason || null, since: answer.state_since || agent.since };
      $("reason").value = "";
      showError($("state-error"), null);
      drawAgent();
      announce("You are " + (STATE_LABELS[agent.state] || agent.state));
    } catch (error) {
      showError($("state-error"), error);
    }
  }

  // ---- interactions: tabs and panels ----

  function isVoice(ix) {
    return ix.media === "voice";
  }

  function tabLabel(ix) {
    const customer = ix.chat && ix.chat.customer;
    const name = customer && (customer.nickname || customer.firstName);
    const who = [name, ix.customer_number].filter(Boolean).join(" · ") || "customer";
    return (isVoice(ix) ? "Call " : "Chat ") + who;
  }

  function createWork(ix) {
    const id = ix.service_id;
    const key = id.replace(/[^A-Za-z0-9_-]/g, "");
    const tab = el("button", "tab");
    tab.type = "button";
    tab.id = "tab-" + key;
    tab.setAttribute("role", "tab");
    tab.setAttribute("aria-controls", "panel-" + key);
    tab.setAttribute("aria-selected", "false");
    tab.tabIndex = -1;
    tab.dataset.service = id;
    tab.append(el("span", "tab-label"), el("span", "tab-unread", "new"));
    tab.addEventListener("click", () => select(id));

    const panel = $("work-panel").content.firstElementChild.cloneNode(true);
    panel.id = "panel-" + key;
    panel.dataset.service = id;
    panel.setAttribute("aria-labelledby", tab.id);
    panel.hidden = true;
    // Labels need ids unique on the page.
    for (const [labelClass, inputClass] of [["send-label", "send-text"], ["push-label", "push-url"]]) {
      const input = panel.querySelector("." + inputClass);
      input.id = inputClass + "-" + key;
      panel.querySelector("." + labelClass).htmlFor = input.id;
    }
    const work = {
      id, tab, panel, ix,
      next: 1, fetching: false, again: false,
      typingSent: false, typingTimer: null,
      waitedBase: null,
    };
    wirePanel(work);
    $("tabs").append(tab);
    $("panels").append(panel);
    works.set(id, work);
    if (selected === null) select(id);
    return work;
  }

  function wirePanel(work) {
    const { panel } = work;
    const errorNode = panel.querySelector(".work-error");
    const act = async (what) => {
      try {
        await what();
        showError(errorNode, null);
      } catch (error) {
        showError(errorNode, error);
      }
    };
    const service = "/" + encodeURIComponent(work.id);
    panel.querySelector(".accept").addEventListener("click", () => act(async () => {
      await api("POST", "/interactions" + service + "/accept");
      announce("Accepted");
    }));
    for (const button of panel.querySelectorAll("[data-outcome]")) {
      button.addEventListener("click", () => act(async () => {
        const answer = await api("POST", "/interactions" + service + "/outcome", { outcome: button.dataset.outcome });
        showOutcome(work, answer);
      }));
    }
    const text = panel.querySelector(".send-text");
    panel.querySelector(".send").addEventListener("submit", (event) => {
      event.preventDefault();
      const message = text.value;
      if (!message.trim()) return;
      act(async () => {
        await api("POST", "/chat" + service + "/message", { text: message });
        text.value = "";
        await stopTyping(work);
        await fetchTranscript(work);
      });
    });
    // Enter sends, Shift+Enter makes a new line.
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        panel.querySelector(".send").requestSubmit();
      }
    });
    text.addEventListener("input", () => act(() => typed(work, text.value)));
    panel.querySelector(".push").addEventListener("submit", (event) => {
      event.preventDefault();
      const url = panel.querySelector(".push-url");
      act(async () => {
        await api("POST", "/chat" + service + "/push-url", { url: url.value.trim() });
        url.value = "";
        await fetchTranscript(work);
      });
    });
    panel.querySelector(".leave").addEventListener("click", () => act(async () => {
      await stopTyping(work);
      await api("POST", "/chat" + service + "/leave");
      panel.querySelector(".leave").disabled = true;
      announce("You left the chat");
      await fetchTranscript(work);
    }));
  }

  /** Typing start on the first key, typing stop after a pause or when the box is empty. */
  async function typed(work, value) {
    clearTimeout(work.typingTimer);
    if (!value.trim()) return stopTyping(work);
    work.typingTimer = setTimeout(() => stopTyping(work).catch(() => {}), TYPING_IDLE_MS);
    if (work.typingSent) return;
    work.typingSent = true;
    await api("POST", "/chat/" + encodeURIComponent(work.id) + "/typing", { typing: true });
  }

  async function stopTyping(work) {
    clearTimeout(work.typingTimer);
    if (!work.typingSent) return;
    work.typingSent = false;
    await api("POST", "/chat/" + encodeURIComponent(work.id) + "/typing", { typing: false });
  }

  function select(id, focus = false) {
    selected = id;
    for (const work of works.values()) {
      const on = work.id === id;
      work.tab.setAttribute("aria-selected", String(on));
      work.tab.tabIndex = on ? 0 : -1;
      work.panel.hidden = !on;
      if (on) {
        work.tab.classList.remove("unread");
        if (focus) work.tab.focus();
      }
    }
  }

  function onTabKey(event) {
    const ids = [...works.keys()];
    const at = ids.indexOf(selected);
    if (at < 0) return;
    const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: ids.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    select(ids[(moves[event.key] + ids.length) % ids.length], true);
  }

  function removeWork(id) {
    const work = works.get(id);
    if (!work) return;
    clearTimeout(work.typingTimer);
    work.tab.remove();
    work.panel.remove();
    works.delete(id);
    announce(tabLabel(work.ix) + " ended");
    if (selected === id) {
      selected = null;
      const first = works.keys().next();
      if (!first.done) select(first.value);
    }
  }

  function drawWork(work) {
    const { ix, panel } = work;
    work.tab.querySelector(".tab-label").textContent = tabLabel(ix);
    panel.querySelector(".work-title").textContent = `${tabLabel(ix)} · ${ix.service_name}`;
    const status = panel.querySelector(".work-status");
    status.textContent = STATUS_LABELS[ix.status] || ix.status;
    status.className = "badge work-status " + ({ active: "ok", invited: "warn" }[ix.status] || "");
    drawData(work);
    drawWaiting(work);
    panel.querySelector(".work-accept").hidden = ix.status !== "invited";
    const voice = isVoice(ix);
    panel.querySelector(".voice").hidden = !voice;
    panel.querySelector(".chat").hidden = voice || !ix.chat;
    if (voice) {
      const number = (ix.dial && ix.dial.number) || ix.customer_number || "";
      const dial = panel.querySelector(".dial-number");
      dial.textContent = number || "(no number)";
      dial.href = "tel:" + number.replace(/[^0-9+*#]/g, "");
      const attempts = ix.dial && ix.dial.attempts;
      panel.querySelector(".dial-attempts").textContent = attempts ? `Attempts so far: ${attempts}.` : "";
      // An outcome is recorded once the call is taken (Accept, or joined automatically).
      for (const button of panel.querySelectorAll("[data-outcome]")) button.disabled = ix.status !== "active";
    }
  }

  function drawData(work) {
    const { ix } = work;
    const pairs = [["Customer number", ix.customer_number || "—"], ["Service", ix.service_name]];
    if (ix.media) pairs.push(["Media", ix.media]);
    const step = routingStep(ix);
    if (step) pairs.push(["Found by", step]);
    const customer = ix.chat && ix.chat.customer;
    if (customer) {
      const name = [customer.firstName, customer.lastName].filter(Boolean).join(" ");
      if (name) pairs.push(["Name", name]);
      if (customer.email) pairs.push(["Email", customer.email]);
      if (customer.subject) pairs.push(["Subject", customer.subject]);
    }
    for (const [key, value] of Object.entries(ix.user_data || {})) pairs.push([key, value]);
    const list = work.panel.querySelector(".work-data");
    list.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", "", k), el("dd", "", v)]));
  }

  /** The routing step that found this agent, when the snapshot says. */
  function routingStep(ix) {
    const step = ix.routing_step || ix.found_by;
    if (!step) return null;
    if (typeof step === "string") return step;
    const parts = [];
    if (step.step !== undefined) parts.push("step " + step.step);
    if (step.target) parts.push(step.target);
    return parts.join(": ") || JSON.stringify(step);
  }

  function drawWaiting(work) {
    const { ix } = work;
    const node = work.panel.querySelector(".work-waiting");
    const waited = waitedSecs(work);
    node.hidden = waited === null;
    if (waited !== null) node.textContent = "Waited " + duration(waited) + " in the queue";
  }

  /** How long the customer waited before this agent was found, if the snapshot says. */
  function waitedSecs(work) {
    const { ix } = work;
    if (typeof ix.waited_secs === "number") return ix.waited_secs;
    if (ix.queued_at && ix.reserved_at) return (Date.parse(ix.reserved_at) - Date.parse(ix.queued_at)) / 1000;
    if (ix.queued_at && ix.status === "reserved") return secondsSince(ix.queued_at);
    return null;
  }

  function showOutcome(work, answer) {
    const node = work.panel.querySelector(".outcome-result");
    let text = `${OUTCOME_LABELS[answer.outcome] || answer.outcome} recorded: ${answer.callback_state}`;
    if (answer.reason) text += ` (${answer.reason})`;
    if (answer.redial_at) text += `; the customer is called again from ${new Date(answer.redial_at).toLocaleTimeString()}`;
    if (answer.attempts !== undefined) text += `; attempts so far: ${answer.attempts}`;
    node.textContent = text + ".";
    node.hidden = false;
    for (const button of work.panel.querySelectorAll("[data-outcome]")) button.disabled = true;
    // The tab goes with the next snapshot; the outcome stays in view above the tabs.
    const notice = $("work-notice");
    notice.textContent = `${tabLabel(work.ix)}: ${node.textContent}`;
    notice.hidden = false;
    announce(node.textContent);
  }

  // ---- chat transcripts ----

  /** Fetches the events from the page's position on; one fetch at a time per chat. */
  async function fetchTranscript(work) {
    if (work.fetching) {
      work.again = true;
      return;
    }
    work.fetching = true;
    try {
      do {
        work.again = false;
        const view = await api("GET", `/chat/${encodeURIComponent(work.id)}?transcriptPosition=${work.next}`);
        for (const event of view.transcript || []) {
          if (event.position < work.next) continue;
          addEvent(work, event);
          work.next = event.position + 1;
        }
      } while (work.again);
    } catch (error) {
      showError(work.panel.querySelector(".work-error"), error);
    } finally {
      work.fetching = false;
    }
  }

  function addEvent(work, event) {
    const [kind, nickname, text, , userType] = event.row;
    const fromCustomer = userType === "CLIENT";
    if (kind === "Notice.TypingStarted" || kind === "Notice.TypingStopped") {
      if (fromCustomer) setCustomerTyping(work, kind === "Notice.TypingStarted");
      return;
    }
    if (fromCustomer && kind === "Message.Text") setCustomerTyping(work, false);
    const hidden = event.visibility && event.visibility !== "ALL";
    const item = el("li", "event " + userType.toLowerCase() + (kind === "Message.Text" ? " message" : " notice") + (hidden ? " hidden-event" : ""));
    item.dataset.position = event.position;
    item.dataset.kind = kind;
    item.append(el("span", "speaker", nickname || userType));
    if (hidden) item.append(el("span", "badge warn", `hidden from the customer (${event.visibility})`));
    if (kind === "Notice.PushUrl") {
      item.append(el("span", "text", "pushed "), el("span", "text mono", text));
    } else {
      item.append(el("span", "text", text));
    }
    const list = work.panel.querySelector(".transcript-live");
    list.append(item);
    list.scrollTop = list.scrollHeight;
    if (selected !== work.id && fromCustomer) work.tab.classList.add("unread");
  }

  function setCustomerTyping(work, typing) {
    work.panel.querySelector(".customer-typing").hidden = !typing;
  }

  // ---- snapshots ----

  function upsert(ix) {
    let work = works.get(ix.service_id);
    const fresh = !work;
    if (fresh) work = createWork(ix);
    const before = work.ix.status;
    work.ix = ix;
    drawWork(work);
    if (fresh || (before !== ix.status && ix.status === "invited")) alertIncoming(ix);
    if (ix.chat && ix.chat.transcriptPosition > work.next) fetchTranscript(work);
  }

  function alertIncoming(ix) {
    const what = isVoice(ix) ? "Callback" : "Chat";
    const text = `${what} from ${ix.customer_number || "a customer"} (${ix.service_name})`;
    beep();
    notify(`New ${what.toLowerCase()}`, text);
    announce("New: " + text);
  }

  function onSnapshot(snapshot) {
    setOnline(true);
    count("snapshots");
    if (snapshot.now && !isNaN(Date.parse(snapshot.now))) skewMs = Date.parse(snapshot.now) - Date.now();
    if (snapshot.agent) {
      agent = { ...agent, ...snapshot.agent };
      drawAgent();
    }
    const seen = new Set();
    for (const ix of snapshot.interactions || []) {
      seen.add(ix.service_id);
      upsert(ix);
    }
    for (const id of [...works.keys()]) if (!seen.has(id)) removeWork(id);
    $("no-work").hidden = works.size > 0;
    if (snapshot.history_version !== historyVersion) {
      historyVersion = snapshot.history_version;
      loadHistory();
    }
  }

  /**
   * A stream the server ends on purpose (each lasts a while, then the browser reconnects at
   * once) is not worth a banner: the banner shows when no snapshot came back within a second
   * of the first error. The grace runs from that first error: each failed retry (every 500 ms
   * while the network is down) reports an error again, and restarting the grace on each would
   * keep the banner from ever showing.
   */
  const OFFLINE_GRACE_MS = 1000;
  let offlineTimer = null;

  function setOnline(online, atOnce = false) {
    if (online) {
      clearTimeout(offlineTimer);
      offlineTimer = null;
      show(true);
    } else if (atOnce) {
      clearTimeout(offlineTimer);
      offlineTimer = null;
      show(false);
    } else if (offlineTimer === null && $("offline").hidden) {
      offlineTimer = setTimeout(() => {
        offlineTimer = null;
        show(false);
      }, OFFLINE_GRACE_MS);
    }
    function show(up) {
      $("offline").hidden = up;
      body.classList.toggle("is-offline", !up);
    }
  }

  /**
   * The server sends a `ping` whenever it sent nothing for its keep-alive interval (each
   * snapshot says how long that is, `keep_alive_ms`; the server's default until the first
   * one). Hearing nothing for SILENCE_FACTOR intervals means the connection died without the
   * browser noticing: the watchdog then shows the banner at once (it waited long enough),
   * closes the stream and opens a new one.
   */
  const SILENCE_FACTOR = 2.5;
  let keepAliveMs = 10000;
  let source = null;
  let watchdog = null;
  let heardAt = 0;

  function heard() {
    heardAt = Date.now();
    clearTimeout(watchdog);
    watchdog = setTimeout(onSilence, keepAliveMs * SILENCE_FACTOR);
  }

  function onSilence() {
    watchdog = null;
    count("silences");
    body.dataset.silentForMs = String(Date.now() - heardAt);
    setOnline(false, true);
    source.close();
    connect();
  }

  function onPing(ping) {
    setOnline(true);
    count("pings");
    if (ping.now && !isNaN(Date.parse(ping.now))) skewMs = Date.parse(ping.now) - Date.now();
  }

  function connect() {
    const mine = new EventSource("/agent/events");
    source = mine;
    heard();
    // A stream the watchdog gave up on may still deliver or fail late: only the current one counts.
    const current = () => mine === source;
    mine.addEventListener("snapshot", (event) => {
      if (!current()) return;
      const snapshot = JSON.parse(event.data);
      if (Number(snapshot.keep_alive_ms) > 0) {
        keepAliveMs = Number(snapshot.keep_alive_ms);
        body.dataset.keepAliveMs = String(keepAliveMs);
      }
      heard();
      onSnapshot(snapshot);
    });
    mine.addEventListener("ping", (event) => {
      if (!current()) return;
      heard();
      onPing(JSON.parse(event.data));
    });
    mine.addEventListener("error", () => {
      if (!current() || mine.readyState === EventSource.OPEN) return;
      setOnline(false);
      // The browser retries by itself unless the server refused the stream (a session that
      // ended, say): then ask who is signed in, and go to the sign-in page if nobody is.
      if (mine.readyState === EventSource.CLOSED) {
        clearTimeout(watchdog);
        watchdog = null;
        setTimeout(async () => {
          if (!current()) return;
          const session = await fetch("/agent/session", { credentials: "same-origin" }).catch(() => null);
          if (session && session.status === 401) {
            window.location.assign("/agent/login?next=/agent/");
          } else if (current()) {
            connect();
          }
        }, 2000);
      }
    });
  }

  // ---- history ----

  function localMidnight() {
    const now = new Date();
    return new Date(now.getFullYear(), now.getMonth(), now.getDate());
  }

  /**
   * A history row's outcome: a voice callback's as the agent recorded it (`No answer,
   * attempt 1 of 2, requeued at 08:00:30`), else the server's word for it.
   */
  function outcomeText(row) {
    const dial = row.dial;
    if (!dial) return row.outcome;
    let text = OUTCOME_LABELS[dial.outcome] || dial.outcome;
    text += dial.max_attempts ? `, attempt ${dial.attempt} of ${dial.max_attempts}` : `, attempt ${dial.attempt}`;
    if (dial.redial_at) {
      text += ", requeued at " + new Date(dial.redial_at).toLocaleTimeString();
    } else if (row.outcome === "FAIL_CALL_TO_CUSTOMER" && dial.outcome !== "wrong_number") {
      text += ", no attempt left";
    }
    return text;
  }

  async function loadHistory() {
    try {
      const rows = await api("GET", "/history?since=" + encodeURIComponent(localMidnight().toISOString()));
      const tbody = $("history").querySelector("tbody");
      tbody.replaceChildren(...rows.map((row) => {
        const tr = el("tr");
        tr.dataset.service = row.service_id;
        const endedCell = el("td");
        if (row.ended_at) {
          const ended = el("time", "", new Date(row.ended_at).toLocaleTimeString());
          ended.dateTime = row.ended_at;
          endedCell.append(ended);
        } else {
          endedCell.textContent = "in progress";
        }
        tr.append(endedCell, el("td", "", row.service_name), el("td", "", row.media),
          el("td", "", row.customer_number || "—"), el("td", "outcome", outcomeText(row)),
          el("td", "", duration(row.duration_secs || 0)));
        return tr;
      }));
      $("history-empty").hidden = rows.length > 0;
      showError($("history-error"), null);
    } catch (error) {
      $("history-empty").hidden = true;
      showError($("history-error"), new Error("Today's history cannot be loaded: " + error.message));
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.addEventListener("pointerdown", unlockAudio);
    document.addEventListener("keydown", unlockAudio);
    $("go-ready").addEventListener("click", () => setState("ready"));
    $("go-not-ready").addEventListener("click", () => setState("not_ready"));
    $("go-logged-out").addEventListener("click", () => setState("logged_out"));
    $("reason").addEventListener("input", drawAgent);
    $("tabs").addEventListener("keydown", onTabKey);
    offerNotifications();
    drawAgent();
    setInterval(tick, 1000);
    connect();
  });
})();
