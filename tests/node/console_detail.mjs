// One callback's page in a real browser, in a time zone that is not UTC: the picker shows
// the desired time in the browser's zone, a reschedule picked there arrives as the same
// absolute time (read back through the GMS API), a user-data key is edited, and the
// callback is recreated. Screenshots at 1280x800 and at phone width. Then a callback of a
// service with status notifications, whose receiver (an HTTP server in this script) refuses
// the first event every time and the second once: the page lists both with their state,
// attempts and last error. The server must allow http callbacks to 127.0.0.0/8.
import { createServer } from "node:http";
import { run, newPage, shot, signIn, step, fail } from "./browser.mjs";

// Chromium inherits the zone from this process; Date below computes in the same zone.
process.env.TZ = "America/New_York";

const [base, token] = process.argv.slice(2);
const GMS_USER = "b16416334828b1d26ef14f329628b55b5a8c631d8928a371a5584722dd7fb673";

async function gms(method, path, form) {
  const headers = { gms_user: GMS_USER };
  let body;
  if (form) { headers["content-type"] = "application/x-www-form-urlencoded"; body = new URLSearchParams(form).toString(); }
  const response = await fetch(`${base}${path}`, { method, headers, body });
  if (!response.ok) fail(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}
async function admin(method, path, body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body) headers["content-type"] = "application/json";
  const response = await fetch(`${base}${path}`, { method, headers, body: body && JSON.stringify(body) });
  if (!response.ok) fail(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}
// A receiver that answers `statuses` in turn, then 200; `got` lists the events it was sent.
async function receiver(statuses) {
  const got = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => { body += chunk; });
    request.on("end", () => {
      got.push(JSON.parse(body)._event);
      response.writeHead(statuses.shift() ?? 200).end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/events`, got, server };
}
async function until(what, check, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
const seen = async (id) => (await gms("GET", `/genesys/1/service/callback?_id=${id}`))[0];
const pad = (n) => String(n).padStart(2, "0");
// A datetime-local value for `date` in this process's (and the browser's) zone.
const localValue = (d) =>
  `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;

await run(async (browser) => {
  const desired = new Date(Date.now() + 86_400_000);
  desired.setSeconds(0, 0);
  const created = await gms("POST", "/genesys/1/service/callback/chat-delay", {
    _customer_number: "4155550300", _desired_time: desired.toISOString(), subject: "billing",
  });
  const id = created._id;
  step("a scheduled callback was created through the GMS API");

  const page = await newPage(browser, { name: "admin" });
  await signIn(page, base, "admin", token, "admin", `/admin/callbacks/${id}`);
  await page.waitForURL(new RegExp(`/admin/callbacks/${id}$`));
  const picker = page.getByLabel(/New desired time/);
  if ((await picker.inputValue()) !== localValue(desired)) {
    fail(`the picker shows ${await picker.inputValue()}, expected ${localValue(desired)} (local)`);
  }
  if (!(await page.textContent("#h-actions + .detail-actions")).includes("America/New_York")) fail("the picker does not name the zone");
  step("the picker shows the desired time in the browser's zone");

  const moved = new Date(desired.getTime() + 2 * 86_400_000);
  moved.setHours(10, 30, 0, 0);
  await picker.fill(localValue(moved));
  await Promise.all([page.waitForURL(/done=rescheduled/), page.getByRole("button", { name: "Reschedule" }).click()]);
  if (!(await page.textContent("main")).includes("Callback rescheduled")) fail("no notice after reschedule");
  const after = await seen(id);
  if (after._desired_time !== moved.toISOString()) fail(`GMS says ${after._desired_time}, expected ${moved.toISOString()}`);
  step("the reschedule picked at 10:30 New York time arrived as " + after._desired_time);

  // The refusal is the page again with 400, which Chromium logs as a failed load.
  page.expectedFailures.add(`${base}/admin/callbacks/${id}/reschedule`);
  const past = new Date(Date.now() - 86_400_000);
  await picker.fill(localValue(past));
  await page.getByRole("button", { name: "Reschedule" }).click();
  await page.waitForSelector("#reschedule-error");
  if (!(await page.textContent("#reschedule-error")).includes("in the past")) fail("no past-time error");
  step("a past time is refused beside the picker");
  await shot(page, "console-detail-past-refused");

  await page.goto(`${base}/admin/callbacks/${id}`);
  await page.getByLabel("subject", { exact: true }).fill("refund");
  await Promise.all([page.waitForURL(/done=user-data/), page.getByRole("button", { name: "Save subject" }).click()]);
  if ((await seen(id)).subject !== "refund") fail("subject not changed");
  await page.getByLabel("New key").fill("lang");
  await page.getByLabel("Value", { exact: true }).fill("en");
  await page.getByLabel("Value", { exact: true }).press("Enter");
  await page.waitForFunction(() => document.querySelector("#user-data").textContent.includes("lang"));
  if ((await seen(id)).lang !== "en") fail("lang not added (by the keyboard)");
  step("a user-data key was edited and one added, as the GMS API sees them");
  await shot(page, "console-detail");

  const phone = await newPage(browser, { name: "phone", viewport: { width: 390, height: 844 } });
  await signIn(phone, base, "admin", token, "admin", `/admin/callbacks/${id}`);
  await shot(phone, "console-detail-phone");
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`the page is ${overflow}px wider than the phone`);

  const at = new Date(Date.now() + 3 * 86_400_000);
  at.setHours(9, 15, 0, 0);
  await page.getByLabel(/Recreate at/).fill(localValue(at));
  await Promise.all([page.waitForURL(/done=recreated/), page.getByRole("button", { name: "Recreate" }).click()]);
  const newId = new URL(page.url()).pathname.split("/").pop();
  if (newId === id) fail("recreate kept the id");
  const copy = await seen(newId);
  if (copy._customer_number !== "4155550300" || copy.subject !== "refund" || copy.lang !== "en") fail(`copy: ${JSON.stringify(copy)}`);
  if (copy._desired_time !== at.toISOString()) fail(`copy at ${copy._desired_time}, expected ${at.toISOString()}`);
  if (!(await page.textContent("main")).includes(`created from callback ${id}`)) fail("no notice after recreate");
  await shot(page, "console-detail-recreated");
  step("the callback was recreated with the same number and user data");

  // Three attempts allowed: the first event is refused three times (failed), the second once
  // (delivered on its second attempt).
  const hook = await receiver([500, 500, 500, 503]);
  await admin("PUT", "/genesys/1/admin/services/status-console", {
    preset: "Chat-Delayed",
    options: {
      _target: "Billing@StatServer.GA",
      _enable_status_notification: "subscribe_notify",
      _status_notification_type: "httpcb",
      _status_notification_target: hook.url,
      _status_notification_attempts: "3",
      _callback_events_list: JSON.stringify({
        _cbe_on_service_create: { notify_params: "_service_id" },
        _cbe_on_callback_queued: { notify_params: "_service_id,_callback_state" },
      }),
    },
  });
  const notifying = (await gms("POST", "/genesys/1/service/callback/status-console", { _customer_number: "4155550301" }))._id;
  const entries = await until("both status notifications to settle", async () => {
    const detail = await admin("GET", `/genesys/1/admin/callback/${notifying}`);
    const list = detail.status_notifications;
    return list.length === 2 && list.every((n) => n.state !== "pending") && list;
  });
  if (hook.got.join() !== "_cbe_on_service_create,_cbe_on_service_create,_cbe_on_service_create,_cbe_on_callback_queued,_cbe_on_callback_queued") {
    fail(`the receiver got ${hook.got.join()}`);
  }
  hook.server.close();
  step(`the receiver got the events in order: ${entries.map((n) => `${n.event} ${n.state} after ${n.attempts}`).join(", ")}`);

  await page.goto(`${base}/admin/callbacks/${notifying}`);
  const section = page.locator("#status-notifications");
  const rows = section.locator("tbody tr");
  if ((await rows.count()) !== 2) fail(`${await rows.count()} status rows`);
  const cells = async (i) => (await rows.nth(i).locator("td").allTextContents()).map((t) => t.trim().replace(/\s+/g, " "));
  const [first, second] = [await cells(0), await cells(1)];
  const expect = (row, index, needle, what) => {
    if (!row[index].includes(needle)) fail(`${what}: "${row[index]}" lacks "${needle}" (row ${JSON.stringify(row)})`);
  };
  expect(first, 0, "_cbe_on_service_create", "first event");
  expect(first, 1, "failed", "first state");
  expect(first, 2, "3 of 3", "first attempts");
  expect(first, 3, "500", "first last error");
  expect(first, 4, "given up", "first time");
  expect(second, 0, "_cbe_on_callback_queued", "second event");
  expect(second, 1, "delivered", "second state");
  expect(second, 2, "2 of 3", "second attempts");
  expect(second, 3, "503", "second last error");
  expect(second, 4, "delivered", "second time");
  const headers = (await section.locator("thead th").allTextContents()).join("|");
  if (headers !== "Event|State|Attempts|Last error|Time") fail(`headers ${headers}`);
  await section.scrollIntoViewIfNeeded();
  await shot(page, "console-detail-status-notifications");
  await phone.goto(`${base}/admin/callbacks/${notifying}`);
  await shot(phone, "console-detail-status-notifications-phone");
  const wider = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (wider > 0) fail(`the page with status notifications is ${wider}px wider than the phone`);
  step("the callback's page lists its status notifications: failed after 3 of 3, delivered after 2 of 3");
});
