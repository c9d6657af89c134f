// The request page as a reviewer works it: the action card and diffs (side by side and unified),
// edit-then-approve through the preview (and the agent receiving the edit), the stale-state
// refusal after an agent revision, and the claim another reviewer sees.
import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { signIn, openDecidable } from './helpers.mjs';

const shots = process.env.SCREENSHOT_DIR;
const countersign = process.env.COUNTERSIGN_BIN;
const dataDir = process.env.COUNTERSIGN_DATA_DIR;

/** A fresh API token for the agent that made the request on this page (via the CLI). */
async function agentToken(page) {
  const name = (await page.locator('dt', { hasText: /^Agent$/ }).locator('xpath=following-sibling::dd[1]').first().textContent()).trim();
  const out = execFileSync(countersign, ['--data-dir', dataDir, 'agent', 'token', name], { encoding: 'utf8' });
  return out.match(/\(shown once\): (\S+)/)[1];
}

/** Opens the first open request of `actionType` this reviewer may decide. */
async function openOfType(page, actionType) {
  await page.goto(`/inbox?action_type=${actionType}`);
  const hrefs = await page.locator('tbody tr a.title').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  for (const href of hrefs) {
    await page.goto(href);
    if ((await page.getByRole('button', { name: 'Approve', exact: true }).count()) > 0) return href;
  }
  return null;
}

test('field and text diffs, side by side and unified', async ({ page }, info) => {
  await signIn(page, 'marcus@example.com');
  // A text diff: the contract clause, word by word.
  const contract = await openOfType(page, 'contract.amend');
  test.skip(!contract, 'no open contract amendment');
  const diff = page.getByTestId('field-diff');
  await expect(diff).toHaveAttribute('data-mode', 'side-by-side');
  await expect(diff.locator('del').first()).toHaveText('90');
  await expect(diff.locator('ins').first()).toHaveText(/^(30|45|60)$/);
  await expect(page.getByTestId('action-card').first()).toContainText('Either party may terminate');
  await expect(page.getByTestId('similar')).toBeVisible();
  if (shots && info.project.name === 'hydrated') {
    await page.screenshot({ path: `${shots}/detail-text-diff-1440.png`, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${shots}/detail-text-diff-390.png`, fullPage: true });
    await page.setViewportSize({ width: 1440, height: 900 });
  }
  await page.getByRole('link', { name: 'Unified' }).first().click();
  await expect(page).toHaveURL(/diff=unified/);
  const unified = page.getByTestId('field-diff');
  await expect(unified).toHaveAttribute('data-mode', 'unified');
  await expect(unified.locator('del').first()).toHaveText('90');
  await expect(unified.locator('ins').first()).toHaveText(/^(30|45|60)$/);

  // A field diff: a CRM bulk update changes one nested field.
  const crm = await openOfType(page, 'crm.bulk_update');
  test.skip(!crm, 'no open CRM bulk update');
  const fields = page.getByTestId('field-diff');
  await expect(fields).toHaveAttribute('data-mode', 'side-by-side');
  await expect(fields.locator('tr.changed th')).toHaveText('Set › Country');
  await expect(fields.locator('del')).toHaveText('Deutschland');
  await expect(fields.locator('ins')).toHaveText('Germany');
  await page.goto(`${crm}?diff=unified`);
  await expect(page.getByTestId('field-diff')).toHaveAttribute('data-mode', 'unified');
  await expect(page.getByTestId('field-diff').locator('td')).toContainText('Deutschland → Germany');
  if (shots && info.project.name === 'hydrated') {
    await page.screenshot({ path: `${shots}/detail-field-diff-unified-1440.png`, fullPage: true });
  }
});

test('edit, preview the difference, approve; the agent receives the edit', async ({ page }, info) => {
  await signIn(page, 'dana@example.com');
  const url = await openDecidable(page);
  const id = url.split('/').pop();
  await page.getByText('Edit, then approve').click();
  const box = page.getByLabel('Payload to approve (the agent executes exactly this)');
  const edited = JSON.parse(await box.inputValue());
  edited.reviewer_note = `checked against the ledger ${info.project.name}`;
  await box.fill(JSON.stringify(edited, null, 2));
  await page.getByRole('button', { name: 'Preview the changes' }).click();
  await expect(page).toHaveURL(/step=preview/);
  const preview = page.getByTestId('edit-diff');
  await expect(preview.locator('ins')).toHaveText(edited.reviewer_note);
  expect(await page.getByTestId('request-status').textContent()).not.toMatch(/edit/i);
  if (shots && info.project.name === 'hydrated') {
    await page.screenshot({ path: `${shots}/detail-edit-preview-1440.png`, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${shots}/detail-edit-preview-390.png`, fullPage: true });
    await page.setViewportSize({ width: 1440, height: 900 });
  }
  await page.getByRole('button', { name: 'Approve with these changes' }).click();
  await expect(page.getByRole('status')).toHaveText(`Approved with edit: ${id}`);
  // Triage moves on: the next open request (or the inbox when none is left).
  await expect(page).toHaveURL(/\/inbox(\/req_\w+)?$/);
  expect(page.url()).not.toContain(id);

  test.skip(!countersign || !dataDir, 'COUNTERSIGN_BIN and COUNTERSIGN_DATA_DIR name the server under test');
  await page.goto(url);
  const token = await agentToken(page);
  const res = await page.request.get(`/api/v1/actions/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  expect(res.status()).toBe(200);
  const view = await res.json();
  expect(view.status).toBe('approved_with_edit');
  expect(view.approved_payload).toEqual(edited);
});

test('a decision on a version the agent has since revised is refused and shows the change', async ({ page }, info) => {
  test.skip(!countersign || !dataDir, 'COUNTERSIGN_BIN and COUNTERSIGN_DATA_DIR name the server under test');
  await signIn(page, 'sofia@example.com');
  const url = await openDecidable(page);
  const id = url.split('/').pop();
  const token = await agentToken(page);
  const payload = JSON.parse(await page.getByTestId('payload').textContent());
  payload.revised_by_agent = `second thoughts ${info.project.name}`;
  // The agent revises between the reviewer's load and decision.
  const res = await page.request.post(`/api/v1/actions/${id}/revise`, {
    headers: { Authorization: `Bearer ${token}` },
    data: { payload, reasoning: 'Revised after a second look at the ledger' },
  });
  expect(res.status()).toBe(200);
  await page.getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`/inbox/${id}\\?since=\\d+`));
  await expect(page.getByRole('alert')).toContainText('changed since you opened it');
  const changed = page.getByTestId('revision-changed');
  await expect(changed).toContainText('Changed since you opened it');
  await expect(changed.locator('ins').first()).toBeVisible();
  await expect(changed).toContainText(payload.revised_by_agent);
  await expect(page.getByTestId('request-status')).not.toHaveText('Approved');
  if (shots && info.project.name === 'hydrated') {
    await page.screenshot({ path: `${shots}/detail-stale-1440.png`, fullPage: true });
  }  // Deciding on the new version works (and leaves no revised request open for other specs).
  await page.getByRole('button', { name: 'Approve', exact: true }).click();
  await expect(page.getByRole('status')).toHaveText(`Approved: ${id}`);
});

test('a second reviewer sees who is reviewing; releasing frees it', async ({ browser }, info) => {
  const js = info.project.name === 'hydrated';
  const danaContext = await browser.newContext({ javaScriptEnabled: js });
  const dana = await danaContext.newPage();
  await signIn(dana, 'dana@example.com');
  // A request neither of them is the subject of (refund-bot acts for customers), nobody on it.
  await dana.goto('/inbox?tier=review&agent=refund-bot&assigned=unassigned');
  await dana.locator('tbody tr a.title').first().click();
  const url = dana.url();
  await expect(dana.getByTestId('claim')).toContainText('You are reviewing this');

  const raviContext = await browser.newContext({ javaScriptEnabled: js });
  const ravi = await raviContext.newPage();
  await signIn(ravi, 'ravi@example.com');
  await ravi.goto(url);
  await expect(ravi.getByTestId('claim')).toContainText(/Dana Whitfield is reviewing \(since \d\d:\d\d UTC\)/);
  // Advisory: Ravi can still decide.
  await expect(ravi.getByRole('button', { name: 'Approve', exact: true })).toBeVisible();
  if (shots && js) {
    await ravi.screenshot({ path: `${shots}/detail-claimed-1440.png`, fullPage: true });
    await ravi.setViewportSize({ width: 390, height: 844 });
    await ravi.screenshot({ path: `${shots}/detail-claimed-390.png`, fullPage: true });
  }
  await dana.getByRole('button', { name: 'Release' }).click();
  await expect(dana).toHaveURL(/\/inbox$/);
  await ravi.goto(url);
  await expect(ravi.getByTestId('claim')).toContainText('You are reviewing this');
  await danaContext.close();
  await raviContext.close();
});
