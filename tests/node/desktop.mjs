// The agent desktop (/agent/) in a real browser, two agents signed in at once in two browser
// contexts. A customer (this script, through the GMS API with node's fetch) creates a
// chat-delay service; agent Ann, Ready, sees it arrive with the customer's data; the customer
// connects and starts the chat; they exchange messages both ways, each sees the other typing,
// a hidden workflow message is marked as such; a second chat opens a second tab (arrow keys);
// Ann leaves, the service reads COMPLETED and today's history lists it. Agent Ben, signed in
// the whole time, never sees Ann's chat and is refused it by the API. When the server has
// voice callbacks, one reaches Ann, she records No answer and it comes back after its redial
// delay.
//
//   node tests/node/desktop.mjs <base URL> <admin token>
import { run, newPage, shot, signIn, step, fail, gotoExpecting } from "./browser.mjs";
import { httpClient } from "./customer.mjs";

const [base, token] = process.argv.slice(2);
if (!base || !token) {
  console.error("usage: node desktop.mjs <base URL> <admin token>");
  process.exit(2);
}
const STEP_MS = 10_000;
const CUSTOMER = "desk-customer";
/** How long a voice callback waits after No answer before it is dialled again. */
const REDIAL_SECS = 3;

/** A plain HTTP request; returns `[status, body]` (body parsed as JSON when it is). */
const http = httpClient(base, token, STEP_MS);

/** `http`, failing unless the status is `expected`. */
async function must(expected, method, path, options) {
  const [status, body] = await http(method, path, options);
  if (status !== expected) fail(`${method} ${path}: ${status} ${JSON.stringify(body)}`);
  return body;
}

/** Polls `check` until it returns something truthy, or fails naming `what`. */
async function eventually(what, check, ms = STEP_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The customer's view of the chat from the start: its transcript rows. */
async function customerRows(id) {
  const body = await must(200, "POST", `/genesys/1/service/${id}/ixn/chat/refresh`, {
    form: { transcriptPosition: "1" },
    gmsUser: CUSTOMER,
  });
  return body.transcriptToShow || [];
}

async function agentPage(browser, name, password, viewport) {
  const page = await newPage(browser, { name, viewport });
  await page.context().grantPermissions(["notifications"], { origin: base });
  await signIn(page, base, name, password, "agent");
  if (new URL(page.url()).pathname !== "/agent/") fail(`${name} landed on ${page.url()}`);
  await page.waitForFunction(() => Number(document.body.dataset.snapshots || 0) > 0);
  return page;
}

async function goReady(page) {
  await page.getByRole("button", { name: "Ready", exact: true }).click();
  await page.locator("#state-label", { hasText: "Ready" }).and(page.locator(".ok")).waitFor();
}

function panelOf(page, id) {
  return page.locator(`[role="tabpanel"][data-service="${id}"]`);
}

await run(async (browser) => {
  // Arrange: two agents with chat capacity (Ann in Billing, where chat-delay routes first;
  // Ben in Support only, so the chat can only go to Ann), each with an agent account.
  await must(201, "PUT", "/genesys/1/admin/agents/ann", {
    admin: true,
    json: { name: "Ann Archer", groups: ["Billing"], capacity: { chat: 2, voice: 1 }, auto_answer: true },
  });
  await must(201, "PUT", "/genesys/1/admin/agents/ben", {
    admin: true,
    json: { name: "Ben Baker", groups: ["Support"], capacity: { chat: 2 }, auto_answer: false },
  });
  for (const name of ["ann", "ben"]) {
    await must(201, "POST", "/genesys/1/admin/users", {
      admin: true,
      json: { username: name, role: "agent", agent: name, password: `${name}'s password 1` },
    });
  }

  const stranger = await newPage(browser, { name: "stranger" });
  await stranger.goto(`${base}/agent/`);
  if (!stranger.url().includes("/agent/login")) fail(`not sent to sign in: ${stranger.url()}`);
  step("without a session /agent/ goes to the sign-in page");

  const ann = await agentPage(browser, "ann", "ann's password 1");
  const ben = await agentPage(browser, "ben", "ben's password 1");
  step("ann and ben are signed in at once, each with a live desktop");

  await ben.getByLabel("Reason code").fill("Break");
  await ben.getByRole("button", { name: "Not Ready" }).click();
  await ben.locator("#state-label", { hasText: "Not Ready" }).waitFor();
  await ben.locator("#state-reason", { hasText: "Reason code: Break" }).waitFor();
  await shot(ben, "desktop-not-ready");
  step("ben is Not Ready with reason code Break");
  await goReady(ben);
  await goReady(ann);
  const before = await ann.textContent("#state-time");
  await ann.waitForFunction((old) => document.getElementById("state-time").textContent !== old, before);
  await shot(ann, "desktop-ready");
  step("ann is Ready and the time in the state ticks");

  // A customer creates a chat-delay service: it is reserved for Ann.
  const created = await must(200, "POST", "/genesys/1/service/callback/chat-delay", {
    form: { _customer_number: "5550123", account: "A-42" },
    gmsUser: CUSTOMER,
  });
  const id = created._id;
  const panel = panelOf(ann, id);
  await ann.getByRole("tab", { name: /5550123/ }).waitFor();
  for (const text of ["5550123", "A-42", "chat-delay"]) {
    if (!(await panel.textContent()).includes(text)) fail(`the incoming panel does not show ${text}`);
  }
  await ann.waitForFunction(() => Number(document.body.dataset.beeps || 0) > 0);
  await shot(ann, "desktop-incoming");
  step("the reserved chat appears at once with the customer's number, data and service, with a beep");

  await must(200, "POST", `/genesys/1/service/${id}/connect`, { form: {}, gmsUser: CUSTOMER });
  await must(200, "POST", `/genesys/1/service/${id}/ixn/chat`, {
    form: { firstName: "Jane", lastName: "Doe" },
    gmsUser: CUSTOMER,
  });
  await panel.locator(".event", { hasText: "joined" }).waitFor();
  step("the customer connected and started the chat; ann joined");

  await must(200, "POST", `/genesys/1/service/${id}/ixn/chat/send`, {
    form: { message: "Hello, my bill looks wrong" },
    gmsUser: CUSTOMER,
  });
  await panel.locator(".event.client", { hasText: "Hello, my bill looks wrong" }).waitFor();
  await must(200, "POST", `/genesys/1/service/${id}/ixn/chat/startTyping`, { form: {}, gmsUser: CUSTOMER });
  await panel.getByText("The customer is typing…").waitFor();
  step("ann sees the customer's message and that the customer is typing");

  const interactions = await must(200, "GET", "/genesys/1/agent/ann/interactions", { admin: true });
  const chatSession = interactions.find((ix) => ix.service_id === id).chat.chatSessionId;
  await must(200, "POST", `/genesys/1/admin/chat/${chatSession}/esp/Message`, {
    admin: true,
    form: { MessageText: "Customer is a gold member", Visibility: "INT", Nickname: "workflow" },
  });
  await panel.locator(".hidden-event", { hasText: "Customer is a gold member" }).waitFor();
  if (!(await panel.locator(".hidden-event").textContent()).includes("hidden from the customer")) {
    fail("the workflow message is not marked hidden");
  }
  await shot(ann, "desktop-chat-typing");
  step("a hidden workflow message is marked as hidden from the customer");

  const box = panel.getByLabel("Message", { exact: true });
  await box.pressSequentially("Happy to help, Jane", { delay: 20 });
  await eventually("the customer to see ann typing", async () =>
    (await customerRows(id)).some((row) => row[0] === "Notice.TypingStarted" && row[4] === "AGENT"));
  await box.press("Enter");
  await eventually("the customer to get ann's message", async () =>
    (await customerRows(id)).some((row) => row[0] === "Message.Text" && row[2] === "Happy to help, Jane" && row[4] === "AGENT"));
  await panel.locator(".event.agent", { hasText: "Happy to help, Jane" }).waitFor();
  await must(200, "POST", `/genesys/1/service/${id}/ixn/chat/stopTyping`, { form: {}, gmsUser: CUSTOMER });
  await panel.getByText("The customer is typing…").waitFor({ state: "hidden" });
  const rows = await customerRows(id);
  if (rows.some((row) => row[2] === "Customer is a gold member")) fail("the customer sees the hidden message");
  step("ann typed in the page: the customer saw the typing and the message, not the hidden one");

  await panel.getByLabel("URL to push to the customer").fill("https://example.com/bill");
  await panel.getByRole("button", { name: "Push URL" }).click();
  await eventually("the customer to get the pushed URL", async () =>
    (await customerRows(id)).some((row) => row[0] === "Notice.PushUrl"));
  step("ann pushed a URL to the customer");

  // A second chat at once: a second tab; the arrow keys move between the tabs.
  const second = await must(200, "POST", "/genesys/1/service/callback/chat-delay", {
    form: { _customer_number: "5550999" },
    gmsUser: CUSTOMER,
  });
  await ann.getByRole("tab", { name: /5550999/ }).waitFor();
  await ann.getByRole("tab", { name: /5550123/ }).focus();
  await ann.keyboard.press("ArrowRight");
  const selected = ann.getByRole("tab", { selected: true });
  if (!(await selected.textContent()).includes("5550999")) fail("ArrowRight did not select the second tab");
  if (!(await panelOf(ann, second._id).isVisible())) fail("the second tab's panel is not shown");
  await ann.keyboard.press("ArrowLeft");
  if (!(await ann.getByRole("tab", { selected: true }).textContent()).includes("5550123")) fail("ArrowLeft did not go back");
  await shot(ann, "desktop-two-tabs");
  await ann.setViewportSize({ width: 390, height: 844 });
  await shot(ann, "desktop-chat-phone");
  await ann.setViewportSize({ width: 1280, height: 800 });
  step("a second chat opens a second tab; ArrowRight and ArrowLeft move between them");
  await must(200, "DELETE", `/genesys/1/service/callback/chat-delay/${second._id}`, { gmsUser: CUSTOMER });
  await ann.getByRole("tab", { name: /5550999/ }).waitFor({ state: "detached" });

  // Ben never saw the chat, and the API refuses it to his session.
  if ((await ben.locator(`[data-service="${id}"]`).count()) > 0) fail("ben's page shows ann's chat");
  const refused = `${base}/genesys/1/agent/ann/chat/${id}`;
  ben.expectedFailures.add(refused);
  const status = await ben.evaluate(async (url) => (await fetch(url)).status, refused);
  if (status !== 403) fail(`ben reading ann's chat answered ${status}`);
  await shot(ben, "desktop-second-agent");
  step("the second agent never saw the first agent's chat");

  // Ben, without auto answer, accepts a chat routed to him alone; Ann never sees it.
  const forBen = await must(200, "POST", "/genesys/1/service/callback/chat-delay", {
    form: { _customer_number: "5550777", _target: "ben@StatServer.A" },
    gmsUser: CUSTOMER,
  });
  await ben.getByRole("tab", { name: /5550777/ }).waitFor();
  await must(200, "POST", `/genesys/1/service/${forBen._id}/connect`, { form: {}, gmsUser: CUSTOMER });
  await must(200, "POST", `/genesys/1/service/${forBen._id}/ixn/chat`, { form: { firstName: "Sam" }, gmsUser: CUSTOMER });
  const benPanel = panelOf(ben, forBen._id);
  await benPanel.getByRole("button", { name: "Accept" }).click();
  await benPanel.locator(".event", { hasText: "joined" }).waitFor();
  await benPanel.getByRole("button", { name: "Accept" }).waitFor({ state: "hidden" });
  await shot(ben, "desktop-accepted");
  if ((await ann.locator(`[data-service="${forBen._id}"]`).count()) > 0) fail("ann's page shows ben's chat");
  await benPanel.getByRole("button", { name: "Leave the chat" }).click();
  await ben.getByRole("tab", { name: /5550777/ }).waitFor({ state: "detached" });
  step("ben, without auto answer, accepted a chat of his own with the Accept button");

  await panel.getByRole("button", { name: "Leave the chat" }).click();
  await ann.getByRole("tab", { name: /5550123/ }).waitFor({ state: "detached" });
  const record = await eventually("the service to be COMPLETED", async () => {
    const body = await must(200, "GET", `/genesys/1/admin/callback/${id}`, { admin: true });
    return body._callback_state === "COMPLETED" ? body : null;
  });
  step(`the service reads COMPLETED after the agent left (${record._callback_reason})`);
  const historyRow = ann.locator(`#history tr[data-service="${id}"]`);
  await historyRow.waitFor({ timeout: 10000 });
  const historyText = await historyRow.textContent();
  if (!historyText.includes(record._callback_reason)) fail(`today's history row lacks the outcome: ${historyText}`);
  step(`today's history lists the chat with its outcome (${historyText.trim().replace(/\s+/g, " ")})`);
  await shot(ann, "desktop-after-leave");
  await ann.setViewportSize({ width: 390, height: 844 });
  await shot(ann, "desktop-after-leave-phone");
  await ann.setViewportSize({ width: 1280, height: 800 });

  await voiceCallback(ann, ben);

  await ann.getByRole("button", { name: "Log Out" }).click();
  await ann.locator("#state-label", { hasText: "Logged out" }).waitFor();
  step("ann logged out");
});

/** A voice callback reaches Ann; she records No answer; it comes back after its delay. */
async function voiceCallback(ann) {
  await must(201, "PUT", "/genesys/1/admin/services/voice-cb", {
    admin: true,
    json: {
      preset: "Chat-Delayed",
      options: {
        _media_type: "voice",
        _wait_for_user_confirm: "false",
        _target: "ann@StatServer.A",
        _dial_retry_timeout: String(REDIAL_SECS),
        _max_dial_attempts: "3",
      },
    },
  });
  const created = await must(200, "POST", "/genesys/1/service/callback/voice-cb", {
    form: { _customer_number: "5550456", topic: "loan" },
    gmsUser: CUSTOMER,
  });
  const id = created._id;
  const take = async () => {
    const tab = ann.getByRole("tab", { name: /Call .*5550456/ });
    await tab.waitFor({ timeout: (REDIAL_SECS + 10) * 1000 });
    await tab.click();
    const panel = panelOf(ann, id);
    const accept = panel.getByRole("button", { name: "Accept" });
    const ready = (serviceId) => {
      const node = document.querySelector(`[role="tabpanel"][data-service="${serviceId}"]`);
      return node && (!node.querySelector(".work-accept").hidden || !node.querySelector('[data-outcome="no_answer"]').disabled);
    };
    await ann.waitForFunction(ready, id);
    if (await accept.isVisible()) await accept.click();
    await ann.waitForFunction(
      (serviceId) => !document.querySelector(`[role="tabpanel"][data-service="${serviceId}"] [data-outcome="no_answer"]`).disabled,
      id,
    );
    return panel;
  };
  let panel = await take();
  for (const text of ["5550456", "loan", "voice-cb"]) {
    if (!(await panel.textContent()).includes(text)) fail(`the callback panel does not show ${text}`);
  }
  await shot(ann, "desktop-callback");
  await panel.getByRole("button", { name: "No answer" }).click();
  await ann.getByRole("tab", { name: /Call .*5550456/ }).waitFor({ state: "detached" });
  await ann.locator("#work-notice", { hasText: "No answer recorded" }).waitFor();
  const waiting = await must(200, "GET", `/genesys/1/admin/callback/${id}`, { admin: true });
  if (waiting._callback_state === "COMPLETED") fail(`no answer completed the callback: ${JSON.stringify(waiting._callback_reason)}`);
  await shot(ann, "desktop-callback-no-answer");
  step(`the callback reached ann, who recorded No answer (${waiting._callback_state})`);

  panel = await take();
  if (!(await panel.textContent()).includes("Attempts so far: 1")) fail("the redialled callback does not count its attempt");
  await shot(ann, "desktop-callback-again");
  step("the callback came back after its redial delay");
  await panel.getByRole("button", { name: "Connected" }).click();
  await ann.getByRole("tab", { name: /Call .*5550456/ }).waitFor({ state: "detached" });
  const done = await eventually("the callback to complete", async () => {
    const body = await must(200, "GET", `/genesys/1/admin/callback/${id}`, { admin: true });
    return body._callback_state === "COMPLETED" ? body : null;
  });
  await shot(ann, "desktop-callback-connected");
  step(`the redialled callback was Connected: ${done._callback_reason}`);
}
