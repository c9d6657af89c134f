import { test, expect } from '@playwright/test';
import { signIn } from './helpers.mjs';

const shots = process.env.SCREENSHOT_DIR;

test('an auditor filters the trail, follows a request and verifies the chain', async ({ page }, info) => {
  await signIn(page, 'ines@example.com');
  await page.getByRole('link', { name: 'Audit', exact: true }).click();
  await expect(page.getByTestId('audit-table')).toBeVisible();
  await page.getByLabel('Event').selectOption('decision');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/event_type=decision/);
  const events = page.locator('[data-testid="audit-table"] tbody tr td:nth-child(4)');
  for (const t of await events.allTextContents()) expect(t).toBe('decision');
  if (shots && info.project.name === 'hydrated') await page.screenshot({ path: `${shots}/audit-1440.png` });

  const link = page.locator('[data-testid="audit-table"] tbody tr a').first();
  const id = await link.textContent();
  await link.click();
  await expect(page).toHaveURL(new RegExp(`/inbox/${id}$`));

  await page.goto('/audit');
  await page.getByRole('button', { name: 'Verify the chain' }).click();
  await expect(page.getByRole('status')).toContainText('The chain verifies:');
});
