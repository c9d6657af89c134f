import { test, expect } from '@playwright/test';
import { signIn } from './helpers.mjs';

const shots = process.env.SCREENSHOT_DIR;

test('a reviewer chooses how each notification reaches them', async ({ page }, info) => {
  // Each project sets a different choice, so a pass proves this run saved it.
  const choice = info.project.name === 'hydrated' ? 'In a digest' : 'Off';
  const value = info.project.name === 'hydrated' ? 'digest' : 'off';
  await signIn(page, 'ravi@example.com');
  await page.getByTestId('signed-in-user').click();
  await page.getByRole('link', { name: 'Notification settings' }).click();
  await expect(page).toHaveURL(/\/account\/notifications$/);
  await expect(page.getByRole('heading', { name: 'Notifications' })).toBeVisible();
  await expect(page.locator('.prefs strong')).toHaveText('ravi@example.com');

  await page.getByLabel(`A new request needs my review: ${choice}`).check();
  await page.getByLabel('Reminder before a deadline: At once').check();
  await page.getByRole('button', { name: 'Save notification settings' }).click();
  await expect(page.getByRole('status')).toHaveText('Notification settings saved.');
  await page.reload();
  await expect(page.locator(`#pref-needs_review-${value}`)).toBeChecked();
  await expect(page.locator('#pref-reminder-immediate')).toBeChecked();
  await expect(page.locator('#pref-outcome-immediate')).toBeChecked();

  if (shots) {
    const name = info.project.name === 'hydrated' ? 'notify-prefs' : 'notify-prefs-nojs';
    await page.screenshot({ path: `${shots}/${name}-1440.png`, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${shots}/${name}-390.png`, fullPage: true });
    await page.setViewportSize({ width: 1440, height: 900 });
  }
});

test('the notifications page sends a signed-out visitor to sign in, then back', async ({ page }) => {
  await page.goto('/account/notifications');
  await expect(page).toHaveURL(/\/login\?next=%2Faccount%2Fnotifications$/);
  await page.getByLabel('Email').fill('sofia@example.com');
  await page.getByLabel('Password').fill('countersign-demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/account\/notifications$/);
  await expect(page.getByTestId('preferences-form')).toBeVisible();
});

test('an admin attaches a Slack channel to a team without the URL being shown back', async ({ page }, info) => {
  const token = `e2eT0KEN${info.project.name === 'hydrated' ? 'HYD' : 'NOJS'}`;
  await signIn(page, 'alex@example.com');
  await page.goto('/admin#channels');
  await page.getByTestId('add-channel').getByText('Add a channel').click();
  const form = page.locator('form[action="/admin/channels"]');
  await form.getByLabel('Attached to').selectOption({ label: 'Team: Customer Support' });
  await form.getByLabel('Type').selectOption('slack');
  await form.getByLabel('Webhook URL or email address').fill(`https://hooks.example.invalid/services/T0/B0/${token}`);
  await form.getByLabel('Dual reviewers disagree').uncheck();
  await form.getByRole('button', { name: 'Add channel' }).click();

  await expect(page.getByRole('status')).toContainText('Channel added: Slack hooks.example.invalid/…');
  const row = page.getByTestId('channels-table').locator('tr', { hasText: 'team Customer Support' }).last();
  await expect(row).toContainText('Slack hooks.example.invalid/…');
  await expect(row).toContainText('needs review');
  await expect(row).toContainText('outcome');
  await expect(row).not.toContainText('dual conflict');
  expect(await page.content()).not.toContain(token);
  if (shots && info.project.name === 'hydrated') {
    const section = page.getByTestId('channels-section');
    await page.getByTestId('add-channel').locator('summary').click();
    await section.screenshot({ path: `${shots}/notify-channels-1440.png` });
    await page.setViewportSize({ width: 390, height: 844 });
    await section.screenshot({ path: `${shots}/notify-channels-390.png` });
    await page.getByTestId('add-channel').locator('summary').click();
    await page.setViewportSize({ width: 1440, height: 900 });
  }

  await row.getByRole('button', { name: 'Remove' }).click();
  await expect(page.getByRole('status')).toContainText('Channel removed');
});

test('a JSON webhook channel on a gate reveals its signing secret once', async ({ page }, info) => {
  await signIn(page, 'alex@example.com');
  await page.goto('/admin');
  await page.getByTestId('add-channel').getByText('Add a channel').click();
  const form = page.locator('form[action="/admin/channels"]');
  await form.getByLabel('Attached to').selectOption({ label: 'Gate: refunds' });
  await form.getByLabel('Type').selectOption('webhook');
  await form.getByLabel('Webhook URL or email address').fill(`https://hooks.example.invalid/countersign/${info.project.name}`);
  await form.getByRole('button', { name: 'Add channel' }).click();
  await expect(page.getByTestId('reveal')).toContainText('Webhook signing secret');
  await expect(page.getByTestId('reveal').locator('code')).toHaveText(/^whsec_/);
  await page.reload();
  await expect(page.getByTestId('reveal')).toHaveCount(0);
  const row = page.getByTestId('channels-table').locator('tr', { hasText: 'gate refunds' }).last();
  await expect(row).toContainText('(signed)');
  await row.getByRole('button', { name: 'Remove' }).click();
  await expect(page.getByRole('status')).toContainText('Channel removed');
});

test('a bad channel target is refused and nothing is added', async ({ page }) => {
  await signIn(page, 'alex@example.com');
  await page.goto('/admin');
  const before = await page.getByTestId('channels-table').locator('tbody tr').count();
  await page.getByTestId('add-channel').getByText('Add a channel').click();
  const form = page.locator('form[action="/admin/channels"]');
  await form.getByLabel('Type').selectOption('email');
  await form.getByLabel('Webhook URL or email address').fill('not-an-address');
  await form.getByRole('button', { name: 'Add channel' }).click();
  // Only the form's error: an open circuit breaker may also raise an alert on this page.
  await expect(page.getByRole('alert').filter({ hasText: 'target:' })).toHaveText('target: "not-an-address" is not an email address');
  expect(await page.getByTestId('channels-table').locator('tbody tr').count()).toBe(before);
});
