// gptme's own web UI (as gptme-server ships it) in headless Chromium, served through convmeta:
// what a user sees in the sidebar and on the History page against the list convmeta serves, and
// the UI's own writes (rename, delete) and others' (an append to a log by another process, one
// straight to gptme-server) seen by the UI's next list. Prints one line per check; exits 1 if any fails.
//
// Usage: node webui.js CONVMETA_URL GPTME_URL TOKEN [UI_URL]   (see webui)
// UI_URL: where the UI is loaded from, when not from CONVMETA_URL itself (as the hosted UI is:
// every call is then cross-origin, preflights included).
const fs = require('fs');
const { chromium } = require('playwright-core');

const [convmeta, gptme, token, ui = convmeta] = process.argv.slice(2);
let failed = 0;
function check(ok, what, detail) {
  console.log(`${ok ? 'ok' : 'FAIL'}: ${what}${ok || detail === undefined ? '' : ` (${detail})`}`);
  if (!ok) failed = 1;
}

async function api(base, path, init = {}) {
  const r = await fetch(base + path, { ...init, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
  if (!r.ok) throw new Error(`${init.method || 'GET'} ${path}: ${r.status}`);
  return r.json();
}
const listed = () => api(convmeta, '/api/v2/conversations?limit=1000');

// The sidebar's entries as a user sees them: title and message count, in order.
async function sidebar(page) {
  return page.locator('[data-testid="conversation-title"]').evaluateAll(titles => titles.map(t => ({
    name: t.innerText,
    messages: Number(t.parentElement.querySelector('span.rounded-full')?.innerText ?? NaN),
  })));
}

// Scrolls the sidebar until it stops growing (the UI fetches 50 more per page as it scrolls).
async function scrollToEnd(page) {
  const seen = new Map();
  let still = 0;
  while (still < 5) {
    const before = seen.size;
    for (const e of await sidebar(page)) seen.set(e.name, e.messages);
    still = seen.size === before ? still + 1 : 0;
    await page.locator('[data-testid="conversation-title"]').last().scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
  }
  return seen;
}

// Opens (or reloads) a page of the UI and waits for the list it fetches: the UI first shows
// what it cached from its last visit.
async function open(page, path, reload = false) {
  await nextList(page, () => reload ? page.reload()
    : page.goto(`${ui}${path}#baseUrl=${convmeta}&userToken=${token}`));
  await page.getByText('Skip for now').click({ timeout: 2000 }).catch(() => {});
  await page.waitForTimeout(500);
}

async function menu(page, name, item) {
  const exactly = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  const title = page.getByTestId('conversation-title').filter({ hasText: exactly }).first();
  await page.locator('div[role="button"]', { has: title }).first().dispatchEvent('contextmenu', { button: 2 });
  await page.getByRole('menuitem', { name: item }).click();
}

// The next list the UI fetches after `action` (not its connection probe, `limit=1`).
async function nextList(page, action) {
  const [response] = await Promise.all([
    page.waitForResponse(r => /\/api\/v2\/conversations\?limit=(?!1$)/.test(r.url()) && r.request().method() === 'GET'),
    action(),
  ]);
  return response.status();
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  if (process.env.DEBUG) page.on('response', r => console.log(' ', r.status(), r.request().method(), r.url()));
  page.on('response', r => { if (r.url().includes('/api/v2/conversations') && r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  try {
    // 1. The sidebar, scrolled to its end, is the list.
    await open(page, '/');
    let items = await listed();
    const seen = await scrollToEnd(page);
    const want = new Map(items.map(i => [i.name, i.messages]));
    const differ = [...want].filter(([n, m]) => seen.get(n) !== m).map(([n]) => n);
    check(seen.size === want.size && differ.length === 0,
      `the sidebar scrolled to its end shows all ${want.size} conversations with their message counts`,
      `${seen.size} shown, ${differ.length} differ, e.g. ${differ[0]}`);

    // 2. Two other writers: gptme in a terminal appending to its log, and another client of
    // gptme-server. The UI's next load counts both.
    const [byFile, byServer] = [items[items.length - 1], items[items.length - 2]];
    fs.appendFileSync(byFile.path, JSON.stringify({ role: 'user', content: 'from a terminal', timestamp: new Date().toISOString().slice(0, -1) }) + '\n');
    await api(gptme, `/api/v2/conversations/${encodeURIComponent(byServer.id)}`,
      { method: 'POST', body: JSON.stringify({ role: 'user', content: 'from another client' }) });
    await open(page, '/', true);
    const shown = await sidebar(page);
    for (const [item, how] of [[byFile, 'to its log by another process'], [byServer, 'straight to gptme-server']]) {
      const entry = shown.find(e => e.name === item.name);
      check(entry?.messages === item.messages + 1, `a message appended ${how} is counted in the sidebar at the next load`,
        `${item.name} ${entry ? `shows ${entry.messages}` : 'is not on its first page'}; want ${item.messages + 1}`);
    }

    // 3. Rename through the sidebar's menu: the UI's next list has the name, and gptme agrees.
    items = await listed();
    const renamed = items[2], newName = `Renamed in the web UI at ${new Date().toISOString()}`;
    await menu(page, renamed.name, 'Rename');
    const input = page.getByTestId('conversation-rename-input');
    await Promise.all([
      page.waitForResponse(r => r.url().endsWith(`/${renamed.id}/config`) && r.request().method() === 'PATCH'),
      input.fill(newName).then(() => input.press('Enter')),
    ]);
    await open(page, '/', true);
    const names = (await sidebar(page)).map(e => e.name);
    const config = await api(gptme, `/api/v2/conversations/${encodeURIComponent(renamed.id)}/config`);
    check(names.includes(newName) && !names.includes(renamed.name) && config.chat?.name === newName,
      'a rename in the sidebar is in the next list, as gptme-server has it', `gptme has ${JSON.stringify(config.chat?.name)}`);

    // 4. Delete through the sidebar's menu: the list the UI fetches at once no longer has it.
    const gone = (await listed())[1];
    await menu(page, gone.name, 'Delete');
    const status = await nextList(page, () => page.getByRole('button', { name: 'Delete', exact: true }).click());
    await page.waitForTimeout(500);
    const after = (await sidebar(page)).map(e => e.name);
    check(status === 200 && !after.includes(gone.name) && !(await listed()).some(i => i.id === gone.id),
      'a conversation deleted in the sidebar is gone from the list the UI fetches right after', `status ${status}`);

    // 5. The History page counts what the list holds.
    items = await listed();
    await open(page, '/history');
    const text = await page.locator('body').innerText();
    const stat = label => Number((text.match(new RegExp(`([\\d,]+)\\s*\\n+\\s*${label}`)) || [])[1]?.replace(/,/g, ''));
    const messages = items.reduce((n, i) => n + i.messages, 0);
    check(stat('Conversations') === items.length && stat('Messages') === messages,
      `the History page counts ${items.length} conversations and ${messages} messages`,
      `it shows ${stat('Conversations')} and ${stat('Messages')}`);

    // 6. The History page's search box (3 characters or more, sent 300 ms after the last key):
    // what the UI asks convmeta is answered as gptme-server answers it with a full scan, and the
    // page shows those conversations.
    for (const typed of ['Renamed in the WEB', 'from a terminal', 'the']) {
      const box = page.getByLabel('Search conversations');
      const [response] = await Promise.all([
        page.waitForResponse(r => r.url().includes('/api/v2/conversations?q=') && r.request().method() === 'GET'),
        box.fill(typed),
      ]);
      const found = await response.json();
      const query = new URL(response.url()).search.replace(/detail=[^&]*/, 'detail=true');
      const truth = await api(gptme, `/api/v2/conversations${query}`);
      await page.waitForTimeout(500);
      const text = await page.locator('body').innerText();
      const unseen = found.filter(i => !text.includes(i.name)).length;
      const same = JSON.stringify(found.map(i => i.id)) === JSON.stringify(truth.map(i => i.id));
      check(response.status() === 200 && same && found.length > 0 && (found.length > 20 || unseen === 0),
        `the History page's search for "${typed}" lists the ${found.length} conversation${found.length === 1 ? "" : "s"} gptme-server finds`,
        `status ${response.status()}, ${found.length} found against gptme's ${truth.length}, ${unseen} not shown`);
      await box.fill('');
    }

    // 7. The command palette (Ctrl+K) searches as one types (2 characters or more, 200 ms after
    // the last key; ten matches with detail): answered as gptme-server's full scan answers it.
    await page.keyboard.press('Control+k');
    const palette = page.getByPlaceholder('Type a command or search conversations...');
    for (const typed of ['renamed', 'from a t', 'th']) {
      const [response] = await Promise.all([
        page.waitForResponse(r => r.url().includes('/api/v2/conversations?q=') && r.request().method() === 'GET'),
        palette.fill(typed),
      ]);
      const found = await response.json();
      const truth = await api(gptme, `/api/v2/conversations${new URL(response.url()).search}`);
      await page.waitForTimeout(500);
      const text = await page.locator('body').innerText();
      const unseen = found.filter(i => !text.includes(i.name)).length;
      const same = JSON.stringify(found.map(i => i.id)) === JSON.stringify(truth.map(i => i.id));
      check(response.status() === 200 && same && found.length > 0 && unseen === 0,
        `the command palette's search for "${typed}" shows the ${found.length} conversation${found.length === 1 ? '' : 's'} gptme-server finds`,
        `status ${response.status()}, ${found.length} found against gptme's ${truth.length}, ${unseen} not shown`);
    }
    await page.keyboard.press('Escape');

    check(errors.length === 0, 'no list request failed', errors.join(', '));
  } catch (e) {
    check(false, 'the walk through the UI ran', e.message.split('\n')[0]);
    await page.screenshot({ path: 'webui-failure.png' }).catch(() => {});
  }
  await browser.close();
  process.exit(failed);
})();
