// Shared steps for the browser tests.
import { expect } from '@playwright/test';

export const DEMO_PASSWORD = 'countersign-demo';

/** Signs in through the real form (works with and without JavaScript). */
export async function signIn(page, email, { next } = {}) {
  await page.goto(next ? `/login?next=${encodeURIComponent(next)}` : '/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('signed-in-user')).toBeVisible();
}

/** Opens the first review-tier request that Dana may decide (not one acting for her). */
export async function openDecidable(page) {
  await page.goto('/inbox?tier=review');
  const links = page.locator('tbody tr a.title');
  const count = await links.count();
  for (let i = 0; i < count; i++) {
    await page.goto('/inbox?tier=review');
    await page.locator('tbody tr a.title').nth(i).click();
    if ((await page.getByRole('button', { name: 'Approve' }).count()) > 0) return page.url();
  }
  throw new Error('no decidable request in the demo inbox');
}
