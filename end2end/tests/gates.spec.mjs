import { test, expect } from '@playwright/test';
import { signIn } from './helpers.mjs';

const shots = process.env.SCREENSHOT_DIR;

/** Registers an agent through the admin screen and returns its API token (shown once). */
async function newAgentToken(page, name) {
  await page.goto('/admin');
  await page.getByText('Register an agent').click();
  await page.getByLabel('Name (lower case, e.g. refund-bot)').fill(name);
  await page.getByRole('button', { name: 'Register agent' }).click();
  const reveal = page.getByTestId('reveal');
  await expect(reveal).toContainText(`API token for ${name}`);
  return (await reveal.locator('code').first().textContent()).trim();
}

async function submit(page, token, key, amount) {
  const res = await page.request.post('/api/v1/actions', {
    headers: { authorization: `Bearer ${token}`, 'idempotency-key': key },
    data: {
      action_type: 'payment.refund',
      payload: { order_id: key, amount, currency: 'EUR' },
      amount: { value: amount, currency: 'EUR' },
      confidence: 0.95,
    },
  });
  expect(res.status()).toBe(201);
  return res.json();
}

test('an admin raises a threshold in a draft, a second admin approves, versions stay with their requests', async ({ page, browser }, info) => {
  const js = info.project.name === 'hydrated';
  // Each project raises the threshold further, so the two runs do not depend on each other.
  const [threshold, amount] = js ? ['3000', '2500.00'] : ['5000', '4500.00'];
  await signIn(page, 'alex@example.com');
  const token = await newAgentToken(page, `gates-e2e-${info.project.name}`);

  // A request gated now waits for review under the live version.
  const before = await submit(page, token, `before-${info.project.name}`, amount);
  expect(before.tier).toBe('review');

  await page.goto('/gates');
  await expect(page.getByTestId('gates-table')).toBeVisible();
  await page.getByRole('link', { name: 'Refunds' }).click();
  const live = await page.getByTestId('live-version').locator('h2').textContent();
  const liveVersion = Number(live.match(/version (\d+)/)[1]);
  await page.getByRole('button', { name: 'Start a draft' }).click();
  await expect(page.getByRole('status')).toContainText(`Draft version ${liveVersion + 1} started`);

  // Edit the threshold in plain form fields; a bad value is refused first.
  const rule = page.locator('form[data-rule="over-1000"]');
  await rule.locator('input[name="value_0"]').fill(`${threshold} EUR, ${threshold} XXX`);
  await rule.getByRole('button', { name: 'Save rule' }).click();
  await expect(page.getByRole('alert')).toContainText('XXX');
  await page.locator('form[data-rule="over-1000"] input[name="value_0"]').fill(`${threshold} EUR, ${Number(threshold) + 300} USD, ${Number(threshold) - 300} GBP`);
  await page.locator('form[data-rule="over-1000"]').getByRole('button', { name: 'Save rule' }).click();
  await expect(page.getByRole('status')).toContainText('Rule over-1000 saved');
  await expect(page.getByTestId('draft')).toContainText(threshold);

  // The test box shows what the draft would do.
  await page.getByLabel('Request (the JSON an agent submits)').fill(JSON.stringify({ action_type: 'payment.refund', amount: { value: amount, currency: 'EUR' }, confidence: 0.95 }));
  await page.getByRole('button', { name: 'Evaluate' }).click();
  await expect(page.getByTestId('test-draft')).toContainText('log');

  // Raising a threshold loosens: Alex cannot publish it alone.
  await page.getByRole('button', { name: 'Publish' }).click();
  await expect(page.getByRole('status')).toContainText('a second admin must approve');
  await expect(page.getByTestId('awaiting-approval')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Approve and publish' })).toHaveCount(0);
  if (shots && js) await page.screenshot({ path: `${shots}/gate-awaiting-1440.png`, fullPage: true });

  // Priya, in her own browser, approves it.
  const other = await browser.newContext({ javaScriptEnabled: js });
  const priya = await other.newPage();
  await signIn(priya, 'priya@example.com');
  await priya.goto('/gates/refunds');
  await priya.getByRole('button', { name: 'Approve and publish' }).click();
  await expect(priya.getByRole('status')).toContainText(`Approved: version ${liveVersion + 1} is live`);

  // A new request is gated by the new version; the earlier one keeps the old version.
  const after = await submit(page, token, `after-${info.project.name}`, amount);
  expect(after.tier).toBe('log');
  await priya.goto(`/inbox/${before.id}`);
  await expect(priya.getByText(`Gate Refunds, version ${liveVersion}`)).toBeVisible();
  await priya.goto(`/inbox/${after.id}`);
  await expect(priya.getByText(`Gate Refunds, version ${liveVersion + 1}`)).toBeVisible();
  await other.close();
  if (shots && js) {
    await page.goto('/gates/refunds');
    await page.screenshot({ path: `${shots}/gate-1440.png`, fullPage: true });
  }
});
