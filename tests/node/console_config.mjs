// The console's Configured services and Agents pages in a real browser: an administrator
// creates a service from the Chat-Delayed preset, sees the error next to a bad option, fixes
// it, creates an agent, sets it Ready and sees its row say so, then deletes both.
import { run, newPage, shot, signIn, step, fail } from "./browser.mjs";

const [base, token] = process.argv.slice(2);

await run(async (browser) => {
  const page = await newPage(browser, { name: "admin" });
  page.on("dialog", (dialog) => dialog.accept());
  await signIn(page, base, "admin", token, "admin", "/admin/services");
  if (!(await page.textContent("#services")).includes("chat-delay")) fail("the demo services are not listed");
  await shot(page, "console-services");
  step("the services page lists the configured services");

  await page.getByRole("link", { name: "New Chat-Delayed service" }).click();
  await page.waitForURL(/\/admin\/services\/new\/Chat-Delayed/);
  await page.fill("#service-name", "browser-delay");
  await page.fill('[name="option._ttl"]', "soon");
  await Promise.all([page.waitForLoadState("load"), page.getByRole("button", { name: "Create service" }).click()]);
  const error = await page.textContent("#row-_ttl .field-error").catch(() => null);
  if (!error) fail("no error shown next to _ttl");
  await shot(page, "console-service-error");
  step(`the bad option's error is next to it: ${error.trim()}`);

  await page.fill('[name="option._ttl"]', "600");
  await page.fill('[name="option._target"]', "Billing@StatServer.GA");
  await Promise.all([page.waitForLoadState("load"), page.getByRole("button", { name: "Create service" }).click()]);
  if (!/\/admin\/services\/browser-delay\?saved/.test(page.url())) {
    await shot(page, "console-service-refused");
    fail(`the fixed service was refused: ${await page.locator(".field-error").allTextContents()}`);
  }
  await shot(page, "console-service-edit");
  const phone = await newPage(browser, { name: "phone", viewport: { width: 390, height: 844 } });
  await signIn(phone, base, "admin", token, "admin", "/admin/services/browser-delay");
  await shot(phone, "console-service-edit-phone");
  const wide = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  if (wide) fail("the service page is wider than the phone");
  step("the fixed service was created and its page fits a phone");

  await page.goto(`${base}/admin/agents`);
  await page.fill("#agent-id", "browser-agent");
  await page.fill("#agent-name", "Browser Agent");
  await page.fill("#agent-groups", "Billing");
  await page.fill("#agent-capacity", "chat=1");
  await Promise.all([page.waitForURL(/added=browser-agent/), page.getByRole("button", { name: "Add agent" }).click()]);
  const row = page.locator("#agent-browser-agent");
  if (!(await row.textContent()).includes("Logged out")) fail(`a new agent is not logged out: ${await row.textContent()}`);
  await row.locator('select[name="state"]').selectOption("ready");
  await Promise.all([page.waitForLoadState("load"), row.getByRole("button", { name: /Set state/ }).click()]);
  await page.waitForFunction(() => document.querySelector("#agent-browser-agent .state").textContent.includes("Ready"));
  await shot(page, "console-agents");
  await phone.goto(`${base}/admin/agents`);
  await shot(phone, "console-agents-phone");
  step("the agent was added, set Ready, and its row says Ready");

  await page.locator("#agent-browser-agent").getByRole("button", { name: /Delete/ }).click();
  await page.waitForURL(/\/admin\/agents/);
  await page.waitForFunction(() => !document.querySelector("#agent-browser-agent"));
  await page.goto(`${base}/admin/services/browser-delay`);
  await Promise.all([page.waitForURL(/deleted=browser-delay/), page.getByRole("button", { name: "Delete service browser-delay" }).click()]);
  if ((await page.textContent("#services")).includes("browser-delay")) fail("the deleted service is still listed");
  step("the agent and the service were deleted");
});
