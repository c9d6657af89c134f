import { test, expect } from '@playwright/test';
import { signIn } from './helpers.mjs';

const shots = process.env.SCREENSHOT_DIR;

test('an admin adds a person who can then sign in', async ({ page }, info) => {
  const email = `new-${info.project.name}-${Date.now()}@example.com`;
  await signIn(page, 'alex@example.com');
  await page.goto('/admin');
  await page.getByText('Add a person').click();
  const form = page.locator('form[action="/admin/users"]');
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Name').fill('Nina New');
  await form.getByLabel(/Initial password/).fill('a fine initial passphrase');
  await form.getByRole('button', { name: 'Add person' }).click();
  await expect(page.getByRole('status')).toContainText(`Nina New (${email}) can sign in now.`);
  await expect(page.locator(`tr[data-email="${email}"]`)).toBeVisible();

  await page.getByTestId('signed-in-user').click();
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('a fine initial passphrase');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('signed-in-user')).toHaveText('Nina New');
});

test('an admin rotates an agent token and sees it once', async ({ page }, info) => {
  await signIn(page, 'alex@example.com');
  await page.goto('/admin');
  await page.locator('tr[data-agent="crm-hygiene"]').getByRole('button', { name: 'Rotate token' }).click();
  await expect(page.getByTestId('reveal')).toContainText('API token for crm-hygiene');
  await expect(page.getByTestId('reveal').locator('code')).toHaveText(/^csa_/);
  if (shots && info.project.name === 'hydrated') await page.screenshot({ path: `${shots}/admin-reveal-1440.png`, fullPage: true });
  await page.reload();
  await expect(page.getByTestId('reveal')).toHaveCount(0);
});
