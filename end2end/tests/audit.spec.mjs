import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signIn, openDecidable } from './helpers.mjs';

const shots = process.env.SCREENSHOT_DIR;
const countersign = process.env.COUNTERSIGN_BIN;

test('an auditor filters the trail, opens a timeline and verifies the chain', async ({ page }, info) => {
  await signIn(page, 'ines@example.com');
  await page.getByRole('link', { name: 'Audit', exact: true }).click();
  await expect(page.getByTestId('audit-table')).toBeVisible();
  await page.getByLabel('Event').selectOption('decision');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/event_type=decision/);
  const events = page.locator('[data-testid="audit-table"] tbody tr td:nth-child(4)');
  for (const t of await events.allTextContents()) expect(t).toBe('decision');
  if (shots && info.project.name === 'hydrated') await page.screenshot({ path: `${shots}/audit-1440.png` });

  const link = page.locator('[data-testid="audit-table"] tbody tr td:nth-child(5) a').first();
  const id = await link.textContent();
  await link.click();
  await expect(page).toHaveURL(new RegExp(`/audit/requests/${id}$`));
  await expect(page.getByTestId('timeline')).toBeVisible();

  await page.goto('/audit');
  await page.getByRole('button', { name: 'Verify the chain' }).click();
  await expect(page.getByRole('status')).toContainText('The chain verifies:');
});

test('an auditor sees the state a reviewer saw before deciding, and takes the evidence away', async ({ page, browser }, info) => {
  // Dana opens a request and approves it, in her own browser.
  const reviewer = await browser.newContext({ javaScriptEnabled: info.project.name === 'hydrated' });
  const dana = await reviewer.newPage();
  await signIn(dana, 'dana@example.com');
  const url = await openDecidable(dana);
  const id = url.split('/').pop();
  const payload = JSON.parse(await dana.getByTestId('payload').textContent());
  await dana.getByRole('button', { name: 'Approve' }).click();
  await expect(dana.getByRole('status')).toHaveText(`Approved: ${id}`);
  await reviewer.close();

  // Ines filters the explorer to that request and opens its timeline.
  await signIn(page, 'ines@example.com');
  await page.goto('/audit');
  await page.getByRole('textbox', { name: 'Request' }).fill(id);
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(new RegExp(`request=${id}`));
  await expect(page.locator('[data-testid="audit-table"] tbody tr')).not.toHaveCount(0);
  await page.locator('[data-testid="audit-table"] tbody tr td:nth-child(5) a').first().click();
  await expect(page).toHaveURL(new RegExp(`/audit/requests/${id}$`));

  // The view before the decision shows exactly what Dana saw.
  const viewed = page.locator('li[data-event="request_viewed"]').filter({ hasText: 'Dana Whitfield' }).last();
  await expect(viewed).toContainText('Dana Whitfield opened it and saw state version 1');
  await viewed.locator('summary').click();
  const seen = JSON.parse(await viewed.getByTestId('snapshot-payload').textContent());
  expect(seen).toEqual(payload);
  const decided = page.locator('li[data-event="decision"]').last();
  await expect(decided).toContainText('Dana Whitfield decided on state version 1');
  await expect(decided.getByTestId('unchanged')).toBeVisible();
  if (shots && info.project.name === 'hydrated') await page.screenshot({ path: `${shots}/audit-timeline-1440.png`, fullPage: true });

  // Exports: CSV of the request, and the evidence bundle, which verifies offline.
  const dir = mkdtempSync(join(tmpdir(), 'countersign-bundle-'));
  const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'CSV' }).click()]);
  const csvPath = join(dir, 'events.csv');
  await csv.saveAs(csvPath);
  const csvText = readFileSync(csvPath, 'utf8');
  expect(csvText.split('\n')[0]).toContain('seq,occurred_at');
  expect(csvText).toContain('request_viewed');
  expect(csvText).toContain(id);

  const [bundle] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Evidence bundle' }).click()]);
  const bundlePath = join(dir, 'evidence.tar.gz');
  await bundle.saveAs(bundlePath);
  await page.goto('/audit');
  const key = (await page.getByTestId('public-key').textContent()).trim();
  expect(key).toMatch(/^[0-9a-f]{64}$/);
  if (countersign) {
    const out = execFileSync(countersign, ['audit', 'verify-bundle', bundlePath, '--public-key', key]).toString();
    expect(out).toContain('bundle verified');
    expect(out).toContain('signed by the pinned key');
  }
});
