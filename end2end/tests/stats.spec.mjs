import { test, expect } from '@playwright/test';
import { signIn } from './helpers.mjs';

const shots = process.env.SCREENSHOT_DIR;

async function screenshots(page, name) {
  if (!shots) return;
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.screenshot({ path: `${shots}/${name}-1440.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${shots}/${name}-390.png`, fullPage: true });
  await page.setViewportSize({ width: 1440, height: 900 });
}

test('an admin tunes a threshold on demo data, sees the backtest and its misses, and saves a draft', async ({ page }, info) => {
  await signIn(page, 'alex@example.com');
  await page.goto('/gates/refunds');
  await page.getByTestId('tune-link').click();
  await expect(page).toHaveURL(/\/stats\/gates\/refunds/);
  await expect(page.getByTestId('distribution').locator('svg.chart-svg')).toBeVisible();

  // Chart the low-confidence rule's threshold, then move it from 0.70 to 0.60.
  await page.getByTestId('distribution').getByLabel('Threshold').selectOption('low-confidence:confidence');
  await page.getByTestId('distribution').getByRole('button', { name: 'Show' }).click();
  await expect(page.getByTestId('distribution')).toContainText('Distribution of confidence (rule low-confidence)');
  const box = page.getByLabel('Candidate threshold');
  await expect(box).toHaveValue('0.7');
  await box.fill('0.6');
  await page.getByTestId('threshold-form').getByRole('button', { name: 'Backtest' }).click();

  const backtest = page.getByTestId('backtest');
  await expect(backtest).toContainText('What if: rule low-confidence: confidence threshold 0.60 instead of 0.70');
  const changed = Number((await page.getByTestId('bt-changed').textContent()).replace(/,/g, '').match(/\d+/)[0]);
  expect(changed).toBeGreaterThan(0);
  const misses = Number((await page.getByTestId('bt-misses').textContent()).replace(/,/g, '').match(/\d+/)[0]);
  expect(misses).toBeGreaterThan(0);
  const missLinks = page.getByTestId('misses').locator('a.title');
  expect(await missLinks.count()).toBeGreaterThan(0);
  await expect(missLinks.first()).toHaveAttribute('href', /^\/inbox\/req_/);
  await expect(page.getByTestId('bt-hours')).toContainText('minutes per review');
  await screenshots(page, `tune-${info.project.name}`);

  // Bad input is refused with the field named, and nothing else breaks.
  await page.getByLabel('Candidate threshold').fill('lots');
  await page.getByTestId('threshold-form').getByRole('button', { name: 'Backtest' }).click();
  await expect(page.getByTestId('candidate-error')).toContainText('value: "lots" is not a confidence from 0 to 1');
  await expect(page.getByTestId('distribution').locator('svg.chart-svg')).toBeVisible();

  // Save the 0.60 candidate as the gate's draft (replacing one another test left, if any).
  await page.getByLabel('Candidate threshold').fill('0.6');
  await page.getByTestId('threshold-form').getByRole('button', { name: 'Backtest' }).click();
  const replace = page.getByTestId('save-draft').getByRole('checkbox');
  if (await replace.count()) await replace.check();
  await page.getByRole('button', { name: 'Save as draft' }).click();
  await expect(page).toHaveURL(/\/gates\/refunds$/);
  await expect(page.getByRole('status')).toContainText('Saved as draft version');
  await expect(page.getByTestId('draft')).toContainText('0.6');

  // Leave the gate as the other browser tests expect it: no draft.
  await page.getByRole('button', { name: 'Discard draft' }).click();
  await expect(page.getByRole('status')).toContainText('Draft discarded');
});

test('the stats page works without JavaScript: filters, alarms, charts with their numbers, CSV', async ({ page }, info) => {
  await signIn(page, 'ines@example.com');
  await page.goto('/stats');
  await expect(page.getByRole('heading', { name: 'Stats', level: 1 })).toBeVisible();
  await page.getByLabel('Group by').selectOption('rule');
  await page.getByTestId('stats-filters').getByRole('button', { name: 'Show' }).click();
  await expect(page).toHaveURL(/group=rule/);
  await expect(page.getByTestId('stats-table')).toBeVisible();
  await expect(page.getByTestId('stats-table')).toContainText('refunds/over-100');
  await expect(page.getByTestId('chart-volume').locator('svg.chart-svg')).toBeVisible();
  await expect(page.getByTestId('chart-rates').locator('svg.chart-svg')).toBeVisible();
  await expect(page.getByTestId('alarms')).toBeVisible();
  await page.getByText('The numbers behind the charts').click();
  await expect(page.getByTestId('trend-table').locator('tbody tr').first()).toBeVisible();

  const href = await page.getByTestId('csv-groups').getAttribute('href');
  expect(href).toContain('group=rule');
  const csv = await page.request.get(href);
  expect(csv.status()).toBe(200);
  expect(csv.headers()['content-type']).toContain('text/csv');
  expect((await csv.text()).split('\n')[0]).toMatch(/^group,label,requests,tier_auto/);

  // A bad window is a clear error, not an empty page.
  await page.goto('/stats?days=0');
  await expect(page.getByRole('alert')).toContainText('days:');

  await page.goto('/stats?group=gate');
  await screenshots(page, `stats-${info.project.name}`);
});
