// The console's sign-in and Users page in a real browser: the first administrator signs in
// with the admin token, adds a supervisor through the form, who signs in, is refused the
// Users page with a page naming the role that may; the administrator signs out.
import { run, newPage, shot, signIn, step, fail, gotoExpecting } from "./browser.mjs";

const [base, token] = process.argv.slice(2);

await run(async (browser) => {
  const admin = await newPage(browser, { name: "admin" });
  await admin.goto(`${base}/admin/users`);
  if (!admin.url().includes("/admin/login")) fail(`not sent to sign in: ${admin.url()}`);
  await shot(admin, "console-login");
  await admin.getByLabel("User name").fill("admin");
  await admin.getByLabel("Password").fill(token);
  await Promise.all([admin.waitForURL(/\/admin\/users$/), admin.getByRole("button", { name: "Sign in" }).click()]);
  step("the admin token signed in and returned to the users page");

  await admin.getByLabel("User name", { exact: true }).fill("sue");
  await admin.getByLabel("Role", { exact: true }).selectOption("supervisor");
  await admin.getByLabel("Password (at least 8 characters)").fill("sue's password");
  await Promise.all([admin.waitForURL(/added=sue/), admin.getByRole("button", { name: "Add user" }).click()]);
  const row = admin.getByRole("row", { name: /sue/ });
  if (!(await row.textContent()).includes("Supervisor")) fail("sue is not listed as a supervisor");
  await shot(admin, "console-users");
  step("the administrator added sue");

  const phone = await newPage(browser, { name: "phone", viewport: { width: 390, height: 844 } });
  await signIn(phone, base, "admin", token, "admin", "/admin/users");
  await shot(phone, "console-users-phone");

  const sue = await newPage(browser, { name: "sue" });
  await signIn(sue, base, "sue", "sue's password", "admin", "/admin/users");
  await gotoExpecting(sue, `${base}/admin/users`, 403);
  if (!(await sue.textContent("main")).includes("This needs an Administrator")) fail("the 403 page does not name the role");
  await shot(sue, "console-forbidden");
  step("a supervisor is refused the users page, with the role that may");

  // The live overview updates without a reload: create a callback through the GMS API.
  await admin.goto(`${base}/admin/overview`);
  await admin.waitForSelector("img");
  const before = await admin.textContent("main");
  const created = await fetch(`${base}/genesys/1/service/callback/chat-delay`, {
    method: "POST",
    headers: { gms_user: "browser-test", "content-type": "application/x-www-form-urlencoded" },
    body: "_customer_number=5550100",
  });
  if (created.status !== 200) fail(`create answered ${created.status}`);
  await admin.waitForFunction((old) => document.querySelector("main").textContent !== old, before, { timeout: 5000 });
  await shot(admin, "console-overview");
  step("the live overview changed after a create, without a reload");
  await admin.goto(`${base}/admin/health`);
  await shot(admin, "console-health");
  step("the health page shows");

  await admin.getByRole("button", { name: "Sign out" }).click();
  await admin.waitForURL(/\/admin\/login/);
  await admin.goto(`${base}/admin/users`);
  if (!admin.url().includes("/admin/login")) fail("still signed in after signing out");
  step("the administrator signed out");
});
