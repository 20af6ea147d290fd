// Browser test of the Companin chat widget: playwright-core drives Debian's
// Chromium against the real server. Run by widget_test.go (go test ./...),
// which starts the server and the host pages and passes everything in the
// environment:
//   HOST_URL    a page origin the organization allows (a second loopback port)
//   EVIL_URL    a page origin it does not allow
//   QUESTION, EXPECT_ANSWER, EXPECT_SOURCE   what to ask and what must show
//   SCREENSHOT  where to save the picture of the open widget
//   API_URL     the server (its /widget/demo page: DEMO_URL, with the ids)
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const HOST = env('HOST_URL');
const EVIL = env('EVIL_URL');
const QUESTION = env('QUESTION');
const EXPECT_ANSWER = env('EXPECT_ANSWER');
const EXPECT_SOURCE = env('EXPECT_SOURCE');
const SCREENSHOT = env('SCREENSHOT');
const API = env('API_URL');
const DEMO = env('DEMO_URL');

const userDataDir = mkdtempSync(join(tmpdir(), 'companin-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1024, height: 720 },
});
context.setDefaultTimeout(30000);

const step = (name) => console.log(`- ${name}`);

// until polls fn (in node) until it is true, for what happens in the page's
// background (timers, responses).
async function until(fn, what, ms = 30000) {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ask opens the widget of instance, asks QUESTION and waits for the answer
// with its source.
async function ask(page, instance) {
  const widget = page.locator(`companin-widget[data-instance-id="${instance}"]`);
  await widget.getByRole('button', { name: 'Open chat' }).click();
  const box = widget.getByRole('textbox', { name: 'Message' });
  await box.fill(QUESTION);
  await box.press('Enter');
  await widget.getByRole('group', { name: /Quellen|Sources/ }).first().waitFor();
  const text = await widget.getByRole('log').innerText();
  assert.ok(text.includes(EXPECT_ANSWER), `the answer is in the log: ${text}`);
}
const failures = [];
const pageErrors = [];

async function open(url) {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${url}: ${e.message}`));
  await page.goto(url);
  await page.locator('companin-widget[data-ready="true"]').first().waitFor({ state: 'attached' });
  return page;
}

// What the widget looks like, to compare a plain page with a hostile one.
async function looks(page, instance) {
  return page.evaluate((id) => {
    const host = document.querySelector(`companin-widget[data-instance-id="${id}"]`);
    const root = host.shadowRoot;
    const pick = (el, props) => {
      const cs = getComputedStyle(el);
      const r = el.getBoundingClientRect();
      const out = { width: Math.round(r.width), height: Math.round(r.height), right: Math.round(innerWidth - r.right), bottom: Math.round(innerHeight - r.bottom) };
      for (const p of props) out[p] = cs.getPropertyValue(p);
      return out;
    };
    const props = ['font-size', 'font-family', 'color', 'background-color', 'border-radius', 'letter-spacing', 'line-height', 'text-transform', 'display', 'padding-left'];
    return {
      launcher: pick(root.querySelector('.launcher'), props),
      panel: pick(root.querySelector('.panel'), props),
      input: pick(root.querySelector('textarea'), props),
      bubble: pick(root.querySelector('.msg .bubble'), props),
    };
  }, instance);
}

try {
  // 1. The seed's script tag on another origin: open, ask, see the streamed answer and its source.
  step('open chat, ask, see the streamed answer with its source');
  let page = await open(`${HOST}/index.html`);
  const launcher = page.getByRole('button', { name: 'Open chat' });
  await launcher.click();
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.waitFor();
  assert.ok(await box.evaluate((el) => el.getRootNode().activeElement === el), 'opening the chat focuses the message box');
  const log = page.getByRole('log');
  assert.match(await log.innerText(), /Willkommen im Testshop/, 'the configured greeting shows');
  assert.equal(await page.getByRole('heading', { name: 'Testshop Hilfe' }).count(), 1, 'the configured title shows');

  // Watch the log for the typing indicator and a reply that grows while streaming.
  await page.evaluate(() => {
    const root = document.querySelector('companin-widget').shadowRoot;
    window.__seen = { typing: false, busy: false };
    new MutationObserver(() => {
      if (root.querySelector('.typing')) window.__seen.typing = true;
      if (root.querySelector('[aria-busy="true"]')) window.__seen.busy = true;
    }).observe(root, { subtree: true, childList: true, attributes: true, characterData: true });
  });
  const streamed = page.waitForResponse((r) => r.url().includes('/messages') && r.request().method() === 'POST');
  await box.fill(QUESTION);
  await box.press('Enter');
  const res = await streamed;
  assert.equal(res.headers()['content-type'], 'text/event-stream', 'the reply is streamed as Server-Sent Events');
  assert.equal(await box.inputValue(), '', 'Enter sends and clears the box');
  const sources = page.getByRole('group', { name: /Quellen|Sources/ });
  await sources.first().waitFor();
  const text = await log.innerText();
  assert.ok(text.includes(QUESTION), 'the question is in the log');
  assert.ok(text.includes(EXPECT_ANSWER), `the answer is in the log: ${text}`);
  assert.ok((await sources.first().innerText()).includes(EXPECT_SOURCE), 'the source is named under the answer');
  const seen = await page.evaluate(() => window.__seen);
  assert.ok(seen.typing, 'a typing indicator showed while the reply streamed');
  assert.equal(await page.locator('companin-widget .typing').count(), 0, 'the typing indicator is gone once answered');

  // The widget's styles stay in its shadow root: the host's own heading keeps the browser's defaults.
  assert.deepEqual(await page.evaluate(() => {
    const cs = getComputedStyle(document.querySelector('h2.host-title'));
    return [cs.fontSize, cs.color, cs.margin, cs.fontFamily.includes('system-ui')];
  }), ['24px', 'rgb(0, 0, 0)', '19.92px 0px', false], 'the widget does not restyle the host page');

  await page.screenshot({ path: SCREENSHOT });
  step(`screenshot saved to ${SCREENSHOT}`);
  const plain = await looks(page, 'primary-widget');

  // 2. Escape closes and gives focus back to the launcher.
  step('Escape closes the chat');
  await box.focus();
  await page.keyboard.press('Escape');
  await page.getByRole('button', { name: 'Open chat' }).waitFor();
  assert.equal(await page.getByRole('textbox', { name: 'Message' }).isVisible(), false, 'the panel is hidden');
  assert.ok(await page.evaluate(() => {
    const root = document.querySelector('companin-widget').shadowRoot;
    return root.activeElement === root.querySelector('.launcher');
  }), 'focus returns to the launcher');

  // 3. A reload shows the same conversation.
  step('reload shows the history');
  await page.reload();
  await page.locator('companin-widget[data-ready="true"]').waitFor({ state: 'attached' });
  await page.getByRole('button', { name: 'Open chat' }).click();
  await page.getByRole('log').getByText(EXPECT_ANSWER, { exact: false }).waitFor();
  const again = await page.getByRole('log').innerText();
  assert.ok(again.includes(QUESTION), 'the question is back after reload');
  await page.getByRole('group', { name: /Quellen|Sources/ }).first().waitFor();
  const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('companin:v1:session:')));
  assert.equal(stored.length, 1, 'one session is kept per instance');

  // 3b. Offline: a friendly notice, and the message goes out once the connection is back.
  step('offline, then back online: the message is retried');
  const replies = page.locator('companin-widget .msg.assistant:not(.greeting):not(.typing)');
  const before = await replies.count();
  await context.setOffline(true);
  await page.getByRole('textbox', { name: 'Message' }).fill('Und wie lange dauert der Versand nach Österreich?');
  await page.getByRole('textbox', { name: 'Message' }).press('Enter');
  await page.getByText(/offline/).waitFor();
  await context.setOffline(false);
  await page.waitForFunction((n) => document.querySelector('companin-widget').shadowRoot
    .querySelectorAll('.msg.assistant:not(.greeting):not(.typing)').length > n, before);
  assert.equal(await page.getByText(/offline/).count(), 0, 'the notice is gone once sent');

  // 3c. Rate limited: a friendly notice naming the wait, then the message goes out by itself.
  step('429: a friendly notice, then an automatic retry');
  let limited = 0;
  const messagesURL = (url) => url.pathname.endsWith('/messages');
  await page.route(messagesURL, (route) => {
    if (route.request().method() !== 'POST' || limited++ > 0) return route.continue();
    return route.fulfill({
      status: 429,
      headers: { 'Content-Type': 'application/json', 'Retry-After': '2', 'Access-Control-Allow-Origin': HOST,
        'Access-Control-Allow-Credentials': 'true', 'Access-Control-Expose-Headers': 'Retry-After' },
      body: JSON.stringify({ status: 'error', status_code: 429, detail: 'Rate limit exceeded', data: null }),
    });
  });
  const count429 = await replies.count();
  await page.getByRole('textbox', { name: 'Message' }).fill('Wie lange dauert der Versand?');
  await page.getByRole('textbox', { name: 'Message' }).press('Enter');
  await page.getByText(/in 2 (seconds|Sekunden)/).waitFor();
  await page.waitForFunction((n) => document.querySelector('companin-widget').shadowRoot
    .querySelectorAll('.msg.assistant:not(.greeting):not(.typing)').length > n, count429);
  assert.equal(limited, 2, 'one refused POST, then the retry');
  await page.unroute(messagesURL);
  await page.keyboard.press('Escape');
  await page.getByRole('button', { name: 'Open chat' }).waitFor();
  await page.close();

  // 4. Several instances on one page, and hostile CSS: the widget looks the same and keeps to itself.
  step('two instances and aggressive host CSS');
  page = await open(`${HOST}/aggressive.html`);
  await page.locator('companin-widget[data-ready="true"]').nth(1).waitFor({ state: 'attached' });
  assert.equal(await page.locator('companin-widget').count(), 2, 'both instances render');
  const hostile = await looks(page, 'primary-widget');
  for (const part of ['launcher']) {
    assert.deepEqual(hostile[part], plain[part], `${part} looks the same on a hostile page`);
  }
  const launchers = page.getByRole('button', { name: 'Open chat' });
  assert.equal(await launchers.count(), 2);
  await launchers.first().click();
  const hostileOpen = await looks(page, 'primary-widget');
  // A bubble's place in the log depends on how far the history has scrolled
  // when it is measured (the hostile page reloads the same conversation), so
  // bubbles are compared by size and style, not by position.
  for (const looksOf of [hostileOpen, plain]) {
    delete looksOf.bubble.bottom;
    delete looksOf.bubble.right;
  }
  for (const part of ['panel', 'input', 'bubble']) {
    assert.deepEqual(hostileOpen[part], plain[part], `${part} looks the same on a hostile page`);
  }
  // Same instance id on the same origin: the same conversation.
  await page.locator('companin-widget[data-instance-id="primary-widget"]').getByRole('log').getByText(QUESTION).first().waitFor();
  const second = page.locator('companin-widget[data-instance-id="second-widget"]');
  await second.getByRole('button', { name: 'Open chat' }).click();
  await second.getByRole('textbox', { name: 'Message' }).waitFor();
  await page.waitForTimeout(500); // a conversation to load would be here by now
  const secondLog = await second.getByRole('log').innerText();
  assert.ok(!secondLog.includes(QUESTION), 'another instance has its own conversation');
  assert.match(secondLog, /How can we help/, 'YOUR_CONFIG_ID falls back to the default greeting');
  await page.close();

  // 5. An origin the organization does not allow gets no token.
  step('a disallowed origin gets no token');
  page = await context.newPage();
  const tokenRes = page.waitForResponse((r) => r.url().endsWith('/auth/widget-token'));
  await page.goto(`${EVIL}/index.html`);
  assert.equal((await tokenRes).status(), 403, 'widget-token is refused');
  await page.locator('companin-widget[data-ready="true"]').waitFor({ state: 'attached' });
  await page.getByRole('button', { name: 'Open chat' }).click();
  await page.getByText(/not available on this site|nicht verfügbar/).waitFor();
  assert.ok(await page.getByRole('textbox', { name: 'Message' }).isDisabled(), 'no way to send without a token');
  await page.close();

  // 6. A shop with a strict Content-Security-Policy that adds only the API's
  //    origin to script-src and connect-src: the widget works and looks the same.
  step('a page with a strict Content-Security-Policy');
  page = await context.newPage();
  const violations = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text()) && !/inline script/i.test(m.text())) violations.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(`strict.html: ${e.message}`));
  const strictRes = await page.goto(`${HOST}/strict.html`);
  const csp = strictRes.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self' http:\/\/127\.0\.0\.1:\d+;/, 'the page is served with the strict policy');
  assert.ok(!csp.includes('unsafe-inline'), 'no unsafe-inline anywhere');
  await page.locator('companin-widget[data-ready="true"]').waitFor({ state: 'attached' });
  assert.equal(await page.evaluate(() => window.__inlineRan), undefined, 'the policy is enforced: the inline script did not run');
  await ask(page, 'strict-widget');
  const strict = await looks(page, 'strict-widget');
  for (const looksOf of [strict, plain]) {
    delete looksOf.bubble.bottom;
    delete looksOf.bubble.right;
  }
  for (const part of ['launcher', 'panel', 'input', 'bubble']) {
    assert.deepEqual(strict[part], plain[part], `${part} looks the same under the strict policy`);
  }
  assert.deepEqual(violations, [], 'the widget causes no Content-Security-Policy violation');
  await page.close();

  // 7. The demo page on the server's own origin (allowed with org update --add-origin).
  step('the demo page');
  page = await open(DEMO);
  assert.ok(page.url().startsWith(`${API}/widget/demo`), 'served by the API');
  await ask(page, 'demo-widget');
  await page.close();

  // 8. The widget renews its token before it expires (the page's clock runs
  //    58.5 minutes ahead; the token lives 60), and later calls carry the new one.
  step('the token is renewed before it expires');
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`renew.html: ${e.message}`));
  await page.clock.install();
  const tokens = [];
  page.on('response', async (r) => {
    if (r.url().endsWith('/auth/widget-token') && r.status() === 200) tokens.push((await r.json()).token);
  });
  await page.goto(`${HOST}/renew.html`);
  await page.locator('companin-widget[data-ready="true"]').waitFor({ state: 'attached' });
  await until(() => tokens.length === 1, 'the first token');
  await page.clock.fastForward('58:30');
  await until(() => tokens.length === 2, 'a second token before the first expires');
  assert.notEqual(tokens[1], tokens[0], 'a new token');
  const posted = page.waitForRequest((r) => r.url().includes('/messages') && r.method() === 'POST');
  await ask(page, 'renew-widget');
  assert.equal((await posted).headers()['authorization'], `Bearer ${tokens[1]}`, 'the message is sent with the renewed token');
  assert.equal(tokens.length, 2, 'no token was asked for again on the way');
  await page.close();

  assert.deepEqual(pageErrors, [], 'no uncaught errors on the pages');
} catch (e) {
  failures.push(e);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
if (failures.length) {
  for (const f of failures) console.error(f);
  process.exit(1);
}
console.log('widget browser test: ok');
