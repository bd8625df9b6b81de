// Loads a page (or component) of the mini-program under miniprogram-simulate, with TDesign's
// bare npm paths mapped to the built miniprogram_npm copy (simulate resolves only absolute and
// relative paths) and canvas-backed components replaced by stubs.
const fs = require('fs');
const path = require('path');
const simulate = require('miniprogram-simulate');

const root = path.resolve(__dirname, '../../miniprogram');

function walkJson(dir, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'miniprogram_npm') continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walkJson(p, out);
    else if (e.name.endsWith('.json')) out.push(p);
  }
  return out;
}

let overrides = null;

function qrcodeStub() {
  return simulate.load({
    tagName: 't-qrcode',
    template: '<view class="qrcode-stub" data-value="{{value}}">{{value}}</view>',
    properties: { value: { type: String, value: '' }, size: { type: Number, value: 160 } },
  });
}

function componentOverrides() {
  if (overrides) return overrides;
  overrides = {};
  for (const file of walkJson(root, [])) {
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    const using = json.usingComponents || {};
    Object.keys(using).forEach((tag) => {
      if (using[tag].startsWith('tdesign-miniprogram/')) overrides[tag] = `/miniprogram_npm/${using[tag]}`;
    });
  }
  // t-qrcode draws on a 2d canvas, which jsdom does not have.
  overrides['t-qrcode'] = qrcodeStub();
  return overrides;
}

// One definition per path and test file: jest's module registry runs a page's JS only once, so
// loading it again would register nothing. Rendering a loaded definition again is fine.
const loadedIds = {};

function load(relPath, tagName) {
  const key = `${relPath}#${tagName || ''}`;
  if (!loadedIds[key]) loadedIds[key] = loadFresh(relPath, tagName);
  return loadedIds[key];
}

function loadFresh(relPath, tagName) {
  return simulate.load(path.join(root, relPath), tagName || 'page-root', {
    rootPath: root,
    usingComponents: Object.assign({}, componentOverrides()),
    compilerOptions: { maxBuffer: 64 * 1024 * 1024 },
    less: false,
  });
}

// Renders and attaches a page; does not call onLoad (tests do, with the query they want).
function renderPage(relPath, props) {
  const page = simulate.render(load(relPath), props);
  page.attach(document.createElement('parent-wrapper'));
  return page;
}

// Lets pending request callbacks, promise chains and setData settle.
async function flush(times = 6) {
  for (let i = 0; i < times; i += 1) {
    // eslint-disable-next-line no-await-in-loop
    await simulate.sleep(0);
  }
}

// Opens a page the way WeChat does: render, onLoad(query), onShow, then waits for its loads.
async function openPage(relPath, query = {}) {
  const page = renderPage(relPath);
  if (page.instance.onLoad) page.instance.onLoad(query);
  if (page.instance.onShow) page.instance.onShow();
  await flush();
  return page;
}

function $(page, selector) {
  return page.querySelector(selector);
}

function text(page, selector) {
  const node = page.querySelector(selector);
  return node ? node.dom.textContent.replace(/\s+/g, ' ').trim() : null;
}

function allText(page) {
  return page.dom.textContent.replace(/\s+/g, ' ').trim();
}

async function tap(page, selector, detail) {
  const node = page.querySelector(selector);
  if (!node) throw new Error(`nothing matches ${selector}`);
  node.dispatchEvent('tap', { detail: detail || {} });
  await flush();
}

async function fire(page, selector, name, detail) {
  const node = page.querySelector(selector);
  if (!node) throw new Error(`nothing matches ${selector}`);
  node.dispatchEvent(name, { detail: detail || {} });
  await flush();
}

// Taps the retry button of the page's error state.
async function retry(page) {
  await tap(page, '.page >>> .status-action');
}

module.exports = { root, retry, load, renderPage, openPage, flush, $, text, allText, tap, fire };
