import { test, expect } from '@playwright/test';
import { signIn, openDecidable } from './helpers.mjs';

const shots = process.env.SCREENSHOT_DIR;

test('a reviewer reads a request and approves it', async ({ page }, info) => {
  await signIn(page, 'dana@example.com');
  await openDecidable(page);
  await expect(page.getByRole('heading', { name: 'Why it is here' })).toBeVisible();
  await expect(page.getByTestId('explanation')).toContainText('review');
  await expect(page.getByTestId('action-card').first()).toBeVisible();
  if (shots && info.project.name === 'hydrated') {
    await page.screenshot({ path: `${shots}/detail-1440.png`, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${shots}/detail-390.png`, fullPage: true });
    await page.setViewportSize({ width: 1440, height: 900 });
  }
  const id = page.url().split('/').pop();
  await page.getByRole('button', { name: 'Approve', exact: true }).click();
  // Triage moves on to the next open request (or the inbox when none is left).
  await expect(page).toHaveURL(/\/inbox(\/req_\w+)?$/);
  await expect(page.getByRole('status')).toHaveText(`Approved: ${id}`);
  await page.goto(`/inbox/${id}`);
  await expect(page.getByTestId('request-status')).toHaveText('Approved');
  await expect(page.getByText('This request is decided; nothing to do.')).toBeVisible();
});

test('rejecting without a reason is refused', async ({ page }) => {
  await signIn(page, 'ravi@example.com');
  const url = await openDecidable(page);
  await page.getByRole('button', { name: 'Reject' }).click();
  await expect(page).toHaveURL(url);
  await expect(page.getByRole('alert')).toContainText('a rejection needs a reason');
  await page.getByLabel('Reason for rejecting').fill('Amount does not match the invoice');
  await page.getByRole('button', { name: 'Reject' }).click();
  await expect(page.getByRole('status')).toContainText('Rejected');
});

test('an auditor cannot decide', async ({ page }) => {
  await signIn(page, 'ines@example.com');
  await page.goto('/inbox?tier=review');
  await page.locator('tbody tr a.title').first().click();
  await expect(page.getByTestId('cannot-decide')).toHaveText('You can read this request; your role does not decide.');
  await expect(page.getByRole('button', { name: 'Approve', exact: true })).toHaveCount(0);
});

test('a contract amendment shows a word-level diff of the clause', async ({ page }, info) => {
  await signIn(page, 'marcus@example.com');
  await page.goto('/inbox');
  const row = page.locator('tbody tr', { has: page.locator('code', { hasText: 'contract.amend' }) }).first();
  if ((await row.count()) === 0) test.skip(true, 'no open contract amendment on this page');
  await row.locator('a.title').click();
  const diff = page.getByTestId('field-diff');
  await expect(diff.locator('del').first()).toHaveText('90');
  await expect(diff.locator('ins').first()).toHaveText(/^(30|45|60)$/);
  if (shots && info.project.name === 'hydrated') await page.screenshot({ path: `${shots}/diff-1440.png`, fullPage: true });
});

test('a reviewer edits the payload, then approves it', async ({ page }) => {
  await signIn(page, 'dana@example.com');
  const url = await openDecidable(page);
  const id = url.split('/').pop();
  await page.getByText('Edit, then approve').click();
  const box = page.getByLabel('Payload to approve (the agent executes exactly this)');
  const edited = JSON.parse(await box.inputValue());
  edited.note = 'agreed with the customer';
  await box.fill(JSON.stringify(edited, null, 2));
  await page.getByRole('button', { name: 'Preview the changes' }).click();
  await page.getByRole('button', { name: 'Approve with these changes' }).click();
  await expect(page.getByRole('status')).toContainText(id);
  await page.goto(url);
  await expect(page.getByTestId('request-status')).toHaveText(/edit/i);
});
