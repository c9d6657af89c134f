// Split-and-merge dual review: two reviewers in their own browsers approve with different edits
// without seeing each other's review, a senior reviewer settles the conflict in the three-way
// view, and the agent receives the resolved payload.
import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { signIn } from './helpers.mjs';

const shots = process.env.SCREENSHOT_DIR;
const countersign = process.env.COUNTERSIGN_BIN;
const dataDir = process.env.COUNTERSIGN_DATA_DIR;

/** Opens the first dual request nobody has reviewed yet that this reviewer may take. */
async function openFreshDual(page) {
  await page.goto('/inbox?tier=dual');
  const hrefs = await page.locator('tbody tr a.title').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  for (const href of hrefs) {
    await page.goto(href);
    const status = page.getByTestId('dual-status');
    if ((await status.count()) === 0) continue;
    if (!(await status.textContent()).includes('0 of 2 reviews in')) continue;
    if ((await page.getByRole('button', { name: 'Preview the changes', includeHidden: true }).count()) === 0) continue;
    // Ravi reviews second and Marcus settles it: neither may be the request's subject (an
    // access grant to usr_ravi, say), or they could not review it (invariant 3).
    const subject = `${await page.locator('h1').textContent()} ${await page.locator('main').textContent()}`;
    if (/usr_ravi|usr_marcus|Acting for\s*(Ravi|Marcus)/.test(subject)) continue;
    return href;
  }
  throw new Error('no fresh dual request in the demo inbox');
}

async function approveWithEdit(page, marker) {
  await page.getByText('Edit, then approve').click();
  const box = page.getByLabel('Payload to approve (the agent executes exactly this)');
  const edited = JSON.parse(await box.inputValue());
  edited.reviewer_note = marker;
  await box.fill(JSON.stringify(edited, null, 2));
  // The edit is previewed as a difference before it is approved.
  await page.getByRole('button', { name: 'Preview the changes' }).click();
  await page.getByRole('button', { name: 'Approve with these changes' }).click();
  await expect(page.getByRole('status')).toContainText('waits for the other, independent review');
  return edited;
}

test('two reviewers edit differently, a senior settles it, the agent gets the result', async ({ page, browser }, info) => {
  // Finding a dual request nobody has reviewed yet may open most of the first page of dual
  // requests (which ones are fresh depends on the clock the demo history was made at), then
  // three people work it: more than the default 30 s on a busy 2-core machine.
  test.setTimeout(120_000);
  const js = info.project.name === 'hydrated';
  const tag = `${info.project.name}-${Date.now()}`;

  const danaContext = await browser.newContext({ javaScriptEnabled: js });
  const dana = await danaContext.newPage();
  await signIn(dana, 'dana@example.com');
  const href = await openFreshDual(dana);
  const id = href.split('/').pop();
  await approveWithEdit(dana, `Dana's wording ${tag}`);
  await danaContext.close();

  const raviContext = await browser.newContext({ javaScriptEnabled: js });
  const ravi = await raviContext.newPage();
  await signIn(ravi, 'ravi@example.com');
  await ravi.goto(href);
  // Blind: one review is in, and nothing of it shows.
  await expect(ravi.getByTestId('dual-status')).toContainText('1 of 2 reviews in');
  await expect(ravi.locator('body')).not.toContainText(`Dana's wording ${tag}`);
  if (shots && js) await ravi.screenshot({ path: `${shots}/dual-blind-1440.png`, fullPage: true });
  const ravisVersion = await approveWithEdit(ravi, `Ravi's wording ${tag}`);
  await raviContext.close();

  await signIn(page, 'marcus@example.com');
  await page.goto(href);
  const threeWay = page.getByTestId('three-way');
  await expect(threeWay).toContainText(`Dana's wording ${tag}`);
  await expect(threeWay).toContainText(`Ravi's wording ${tag}`);
  if (shots && js) {
    await page.screenshot({ path: `${shots}/dual-conflict-1440.png`, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${shots}/dual-conflict-390.png`, fullPage: true });
    await page.setViewportSize({ width: 1440, height: 900 });
  }
  await page.getByRole('button', { name: /Approve B's version/ }).click();
  await expect(page.getByRole('status')).toContainText(`Approved with edit: ${id}`);

  // The agent reads one outcome: Ravi's version, decided by all three.
  test.skip(!countersign || !dataDir, 'COUNTERSIGN_BIN and COUNTERSIGN_DATA_DIR name the server under test');
  await page.goto(href);
  const agentName = (await page.locator('dt', { hasText: 'Agent' }).locator('xpath=following-sibling::dd[1]').textContent()).trim();
  const out = execFileSync(countersign, ['--data-dir', dataDir, 'agent', 'token', agentName], { encoding: 'utf8' });
  const token = out.match(/\(shown once\): (\S+)/)[1];
  const res = await page.request.get(`/api/v1/actions/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  expect(res.status()).toBe(200);
  const view = await res.json();
  expect(view.status).toBe('approved_with_edit');
  expect(view.approved_payload).toEqual(ravisVersion);
  expect(view.decision.decided_by.map((r) => r.name).sort()).toEqual(['Dana Whitfield', 'Marcus Chen', 'Ravi Menon']);
});
