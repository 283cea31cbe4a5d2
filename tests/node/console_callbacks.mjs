// The Callbacks pages in a real browser: a callback created through the GMS API is found by
// its customer number, opened (its routing history shows the reserved agent), cancelled; a
// time window is bulk-cancelled with the progress bar and report; the CSV of the cancelled
// callbacks is downloaded and checked. Screenshots at 1280x800 and at phone width.
import { readFile } from "node:fs/promises";
import { run, newPage, shot, signIn, step, fail } from "./browser.mjs";

const [base, token] = process.argv.slice(2);
const GMS_USER = "b16416334828b1d26ef14f329628b55b5a8c631d8928a371a5584722dd7fb673";

async function api(method, path, { json, form, gms } = {}) {
  const headers = gms ? { gms_user: GMS_USER } : { authorization: `Bearer ${token}` };
  let body;
  if (json) { headers["content-type"] = "application/json"; body = JSON.stringify(json); }
  if (form) { headers["content-type"] = "application/x-www-form-urlencoded"; body = new URLSearchParams(form).toString(); }
  const response = await fetch(`${base}${path}`, { method, headers, body });
  if (!response.ok) fail(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}
const create = async (fields) =>
  (await api("POST", "/genesys/1/service/callback/chat-delay", { form: fields, gms: true }))._id;

await run(async (browser) => {
  await api("POST", "/genesys/1/agent/kristi/state", { json: { state: "ready" } });
  const routed = await create({ _customer_number: "4155550100" });
  const later = new Date(Date.now() + 2 * 86_400_000).toISOString();
  const windowIds = [
    await create({ _customer_number: "4155550201", _desired_time: later }),
    await create({ _customer_number: "4155550202", _desired_time: later }),
  ];
  step("three callbacks created through the GMS API");

  const page = await newPage(browser, { name: "admin" });
  await signIn(page, base, "admin", token, "admin", "/admin/callbacks");
  await page.getByLabel("Time (desired time)").selectOption("any");
  await page.getByLabel("Customer number or service id").fill("4155550100");
  await Promise.all([page.waitForURL(/q=4155550100/), page.getByRole("button", { name: "Filter" }).click()]);
  if (!(await page.textContent("#found")).includes("1 callback found")) fail(`found: ${await page.textContent("#found")}`);
  await shot(page, "console-callbacks-search");
  step("the callback is found by its customer number");

  await page.getByRole("link", { name: routed }).click();
  await page.waitForURL(new RegExp(`/admin/callbacks/${routed}$`));
  for (let i = 0; i < 20 && !(await page.textContent("#routing")).includes("reserved agent kristi"); i++) {
    await page.waitForTimeout(250);
    await page.reload();
  }
  const routing = await page.textContent("#routing");
  if (!routing.includes("entered") || !routing.includes("reserved agent kristi")) fail(`routing: ${routing}`);
  await shot(page, "console-callback-detail");
  step("its routing history shows the step entered and the agent reserved");

  const phone = await newPage(browser, { name: "phone", viewport: { width: 390, height: 844 } });
  await signIn(phone, base, "admin", token, "admin", `/admin/callbacks/${routed}`);
  await shot(phone, "console-callback-detail-phone");

  page.once("dialog", (dialog) => dialog.accept());
  await Promise.all([page.waitForURL(/cancelled/), page.getByRole("button", { name: "Cancel this callback" }).click()]);
  if (!(await page.textContent("main")).includes("CANCELLED_BY_ADMIN")) fail("not cancelled");
  step("the callback was cancelled from its page");

  await page.goto(`${base}/admin/callbacks`);
  await page.getByLabel("Time (desired time)").selectOption("next7d");
  await page.getByRole("checkbox", { name: "SCHEDULED" }).check();
  await Promise.all([page.waitForURL(/range=next7d/), page.getByRole("button", { name: "Filter" }).click()]);
  if (!(await page.textContent("#found")).includes("2 callbacks found")) fail(`found: ${await page.textContent("#found")}`);
  await page.locator("details.columns summary").click();
  await shot(page, "console-callbacks-window");
  page.once("dialog", (dialog) => dialog.accept());
  await page.getByRole("button", { name: /Cancel all 2 matching/ }).click();
  await page.waitForFunction(() => document.getElementById("bulk-result").textContent.includes("cancelled"));
  const result = await page.textContent("#bulk-result");
  if (!result.startsWith("2 cancelled")) fail(`bulk: ${result}`);
  await shot(page, "console-callbacks-bulk");
  step("the time window was bulk-cancelled");

  const [report] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download report (JSON)" }).click()]);
  const entries = JSON.parse(await readFile(await report.path(), "utf8"));
  if (entries.length !== 2 || entries.some((e) => e._ok_title !== "Ok")) fail(`report: ${JSON.stringify(entries)}`);
  const [csv] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download cancelled (CSV)" }).click()]);
  const lines = (await readFile(await csv.path(), "utf8")).trim().split(/\r?\n/);
  if (lines.length !== 3) fail(`csv: ${lines.join("\n")}`);
  for (const id of windowIds) {
    if (!lines.some((l) => l.startsWith(`${id},chat-delay,COMPLETED,CANCELLED_BY_ADMIN,`))) fail(`csv lacks ${id}`);
  }
  step("the report and the CSV of the cancelled callbacks were downloaded");

  await phone.goto(`${base}/admin/callbacks?range=any`);
  await shot(phone, "console-callbacks-phone");
});
