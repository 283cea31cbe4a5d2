// One callback's page in a real browser, in a time zone that is not UTC: the picker shows
// the desired time in the browser's zone, a reschedule picked there arrives as the same
// absolute time (read back through the GMS API), a user-data key is edited, and the
// callback is recreated. Screenshots at 1280x800 and at phone width.
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
});
