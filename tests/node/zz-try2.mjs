import { run, newPage, shot, signIn, step } from "./browser.mjs";
const base = "http://127.0.0.1:18787", token = "testtoken-abcdefghijklmnop";
const admin = { Authorization: `Bearer ${token}` };
async function http(method, path, { form, json, gmsUser } = {}) {
  const headers = { ...admin };
  let body;
  if (form) { headers["Content-Type"] = "application/x-www-form-urlencoded"; body = new URLSearchParams(form).toString(); }
  if (json) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (gmsUser) { headers.gms_user = gmsUser; delete headers.Authorization; }
  const r = await fetch(base + path, { method, headers, body });
  const t = await r.text(); try { return [r.status, JSON.parse(t)]; } catch { return [r.status, t]; }
}
await run(async (browser) => {
  const p = await newPage(browser, { name: "kristi" });
  await p.route("**/agent/events", async (route) => {
    const [, ixs] = await http("GET", "/genesys/1/agent/kristi/interactions");
    const [, agents] = await http("GET", "/genesys/1/admin/agents");
    const a = agents.find((x) => x.id === "kristi");
    const snap = { agent: { id: "kristi", state: a.state, since: a.state_since, auto_answer: true }, interactions: ixs, history_version: 0 };
    await route.fulfill({ status: 200, headers: { "content-type": "text/event-stream" }, body: `retry: 300\nevent: snapshot\ndata: ${JSON.stringify(snap)}\n\n` });
  });
  await p.route("**/history?*", (route) => route.fulfill({ status: 200, contentType: "application/json", body: "[]" }));
  await signIn(p, base, "kristi", "kristi's password 1", "agent");
  await p.getByRole("button", { name: "Ready", exact: true }).click();
  const [, c] = await http("POST", "/genesys/1/service/callback/chat-delay", { form: { _customer_number: "5550123", account: "A-42" }, gmsUser: "cust" });
  const id = c._id; console.log(c);
  await p.getByRole("tab", { name: /5550123/ }).waitFor();
  await shot(p, "try-incoming");
  console.log(await http("POST", `/genesys/1/service/${id}/connect`, { form: {}, gmsUser: "cust" }));
  await http("POST", `/genesys/1/service/${id}/ixn/chat`, { form: { firstName: "Jane", lastName: "Doe" }, gmsUser: "cust" });
  await http("POST", `/genesys/1/service/${id}/ixn/chat/send`, { form: { message: "Hello, my bill looks wrong" }, gmsUser: "cust" });
  await http("POST", `/genesys/1/service/${id}/ixn/chat/startTyping`, { form: {}, gmsUser: "cust" });
  const [, ixs] = await http("GET", "/genesys/1/agent/kristi/interactions");
  const cs = ixs.find((x) => x.service_id === id).chat.chatSessionId;
  console.log(await http("POST", `/genesys/1/admin/chat/${cs}/esp/Message`, { form: { MessageText: "Customer is a gold member", Visibility: "INT", Nickname: "workflow" } }));
  const panel = p.locator(`[role=tabpanel][data-service="${id}"]`);
  await panel.getByText("The customer is typing…").waitFor();
  await panel.locator(".hidden-event").waitFor();
  const box = panel.getByLabel("Message", { exact: true });
  await box.pressSequentially("Happy to help, Jane", { delay: 20 });
  await box.press("Enter");
  await panel.locator(".event.agent", { hasText: "Happy to help" }).waitFor();
  await shot(p, "try-chat");
  const [, c2] = await http("POST", "/genesys/1/service/callback/chat-delay", { form: { _customer_number: "5550999" }, gmsUser: "cust" });
  await p.getByRole("tab", { name: /5550999/ }).waitFor();
  await shot(p, "try-two");
  await p.setViewportSize({ width: 390, height: 844 });
  await shot(p, "try-chat-phone");
  console.log(await http("POST", `/genesys/1/service/${id}/ixn/chat/refresh`, { form: { transcriptPosition: "1" }, gmsUser: "cust" }));
});
