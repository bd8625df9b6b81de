#!/usr/bin/env node
// Offline checks of what WeChat DevTools would refuse, since DevTools cannot run here:
//   - every WXML compiles with the official compiler (wcc, from the npm package
//     miniprogram-compiler), ours and the built TDesign together, as DevTools compiles them;
//   - every WXSS parses (postcss; the npm wcsc accepts malformed input, see the reference);
//   - every JSON parses, every page in app.json and the tab bar exists, and every
//     usingComponents target (ours and, transitively, TDesign's) has its .json/.js/.wxml;
//   - the main package (our files plus what they pull from miniprogram_npm) stays well under
//     WeChat's 2 MB limit, and no image heavier than 50 KB is bundled (artwork comes from the
//     backend's /static/mp/).
// Prints one line per check and exits non-zero on the first failing category.
const fs = require('fs');
const path = require('path');
const postcss = require('postcss');
const { wxmlToJs } = require('miniprogram-compiler');

const root = path.resolve(__dirname, '..');
const app = path.join(root, 'miniprogram');
const npmDir = path.join(app, 'miniprogram_npm');
const SIZE_BUDGET = 1536 * 1024; // DevTools' code-quality check warns above 1.5 MB
const IMAGE_BUDGET = 50 * 1024;

const failures = [];
const rel = (p) => path.relative(app, p).split(path.sep).join('/');

function walk(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

if (!fs.existsSync(npmDir)) {
  console.error('static: miniprogram_npm is missing; run `npm run build:npm` first');
  process.exit(1);
}

const allFiles = walk(app);
const ownFiles = allFiles.filter((f) => !f.startsWith(npmDir + path.sep));
const byExt = (files, ext) => files.filter((f) => f.endsWith(ext));

// --- JSON ------------------------------------------------------------------------------------
const json = {};
for (const f of byExt(allFiles, '.json')) {
  try {
    json[f] = JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch (e) {
    failures.push(`json: ${rel(f)}: ${e.message}`);
  }
}

// --- WXML with wcc ---------------------------------------------------------------------------
const wxmlFiles = byExt(allFiles, '.wxml');
let wxmlCompiled = 0;
try {
  const source = wxmlToJs(app, { maxBuffer: 64 * 1024 * 1024 });
  // wcc's output expects the webview globals that miniprogram-simulate also provides.
  global.window = global.window || { __webview_engine_version__: 0.02 };
  // eslint-disable-next-line no-new-func
  const gwx = new Function(source)();
  for (const f of wxmlFiles) {
    const render = gwx(rel(f));
    if (typeof render !== 'function') failures.push(`wxml: ${rel(f)}: wcc produced no template`);
    else wxmlCompiled += 1;
  }
} catch (e) {
  failures.push(`wxml: ${String(e.message || e).split('\n').slice(0, 3).join(' ')}`);
}

// --- WXSS with postcss -----------------------------------------------------------------------
let wxssParsed = 0;
for (const f of byExt(allFiles, '.wxss')) {
  try {
    postcss.parse(fs.readFileSync(f, 'utf8'), { from: f });
    wxssParsed += 1;
  } catch (e) {
    failures.push(`wxss: ${rel(f)}:${e.line}:${e.column}: ${e.reason || e.message}`);
  }
}

// --- pages and components --------------------------------------------------------------------
const appJson = json[path.join(app, 'app.json')] || {};
const pageFiles = ['.js', '.json', '.wxml', '.wxss'];
for (const page of appJson.pages || []) {
  for (const ext of pageFiles) {
    if (!fs.existsSync(path.join(app, page + ext))) failures.push(`pages: app.json lists ${page} but ${page}${ext} is missing`);
  }
}
for (const tab of (appJson.tabBar && appJson.tabBar.list) || []) {
  if (!(appJson.pages || []).includes(tab.pagePath)) failures.push(`tabBar: ${tab.pagePath} is not a page`);
}

// Resolves a usingComponents value the way DevTools does: absolute from the app root,
// relative to the declaring file, otherwise an npm path under the nearest miniprogram_npm.
function resolveComponent(from, value) {
  if (value.startsWith('plugin://')) return null;
  if (value.startsWith('/')) return path.join(app, value);
  if (value.startsWith('.')) return path.join(path.dirname(from), value);
  let dir = path.dirname(from);
  while (dir.startsWith(app)) {
    const candidate = path.join(dir, 'miniprogram_npm', value);
    if (fs.existsSync(`${candidate}.json`) || fs.existsSync(path.join(candidate, 'index.json'))) {
      return fs.existsSync(`${candidate}.json`) ? candidate : path.join(candidate, 'index');
    }
    dir = path.dirname(dir);
  }
  return path.join(npmDir, value);
}

const reachable = new Set();
let usingChecked = 0;
function visitComponent(base, from) {
  if (reachable.has(base)) return;
  reachable.add(base);
  const spec = json[`${base}.json`];
  for (const ext of ['.json', '.js', '.wxml']) {
    if (!fs.existsSync(base + ext)) {
      failures.push(`usingComponents: ${rel(from)} uses ${rel(base)}, but ${rel(base)}${ext} is missing`);
      return;
    }
  }
  for (const [tag, value] of Object.entries((spec && spec.usingComponents) || {})) {
    const target = resolveComponent(`${base}.json`, value);
    if (!target) continue;
    usingChecked += 1;
    if (!fs.existsSync(`${target}.json`)) {
      failures.push(`usingComponents: ${rel(base)}.json: <${tag}> -> ${value} does not exist`);
      continue;
    }
    visitComponent(target, `${base}.json`);
  }
}
for (const [tag, value] of Object.entries(appJson.usingComponents || {})) {
  usingChecked += 1;
  const target = resolveComponent(path.join(app, 'app.json'), value);
  if (target && !fs.existsSync(`${target}.json`)) failures.push(`usingComponents: app.json: <${tag}> -> ${value} does not exist`);
  else if (target) visitComponent(target, path.join(app, 'app.json'));
}
for (const page of appJson.pages || []) visitComponent(path.join(app, page), path.join(app, 'app.json'));
// Components of ours that no page uses would still be uploaded; check them too.
for (const f of byExt(ownFiles, '.json')) {
  if (json[f] && json[f].component) visitComponent(f.slice(0, -5), f);
}

// --- main package size -----------------------------------------------------------------------
// What DevTools uploads with "过滤无依赖文件": our own files, plus, from miniprogram_npm, the
// components reachable through usingComponents and the modules, templates, wxs and styles
// those files import.
const packaged = new Set(ownFiles.filter((f) => !/\.(md)$/.test(f)));
const queue = [];
for (const base of reachable) {
  if (!base.startsWith(npmDir)) continue;
  for (const ext of ['.json', '.js', '.wxml', '.wxss']) if (fs.existsSync(base + ext)) queue.push(base + ext);
}
function resolveModule(from, spec) {
  const candidates = [];
  if (spec.startsWith('.') || spec.startsWith('/')) {
    const p = spec.startsWith('/') ? path.join(app, spec) : path.join(path.dirname(from), spec);
    candidates.push(p, `${p}.js`, path.join(p, 'index.js'));
  } else {
    let dir = path.dirname(from);
    while (dir.startsWith(app)) {
      const p = path.join(dir, 'miniprogram_npm', spec);
      candidates.push(`${p}.js`, path.join(p, 'index.js'));
      dir = path.dirname(dir);
    }
  }
  return candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile());
}
const scanned = new Set();
while (queue.length) {
  const f = queue.pop();
  if (scanned.has(f)) continue;
  scanned.add(f);
  packaged.add(f);
  const src = fs.readFileSync(f, 'utf8');
  const refs = [];
  if (f.endsWith('.js') || f.endsWith('.wxs')) {
    for (const m of src.matchAll(/(?:from\s*|require\(\s*|import\s*)["']([^"']+)["']/g)) refs.push(m[1]);
  } else if (f.endsWith('.wxml')) {
    for (const m of src.matchAll(/<(?:import|include|wxs)[^>]*\ssrc=["']([^"']+)["']/g)) refs.push(m[1]);
  } else if (f.endsWith('.wxss')) {
    for (const m of src.matchAll(/@import\s+["']([^"']+)["']/g)) refs.push(m[1]);
  }
  for (const r of refs) {
    const target = f.endsWith('.js') ? resolveModule(f, r) : path.join(path.dirname(f), r);
    if (target && fs.existsSync(target) && fs.statSync(target).isFile()) queue.push(target);
  }
}
let packageBytes = 0;
for (const f of packaged) packageBytes += fs.statSync(f).size;
if (packageBytes > SIZE_BUDGET) {
  failures.push(`size: main package ${(packageBytes / 1024).toFixed(0)} KB exceeds the ${SIZE_BUDGET / 1024} KB budget`);
}
for (const f of ownFiles.filter((x) => /\.(png|jpe?g|gif|webp|svg)$/i.test(x))) {
  const size = fs.statSync(f).size;
  if (size > IMAGE_BUDGET) failures.push(`size: ${rel(f)} is ${(size / 1024).toFixed(0)} KB; serve artwork from /static/mp/ instead`);
}

// --- report ----------------------------------------------------------------------------------
const ownWxml = byExt(ownFiles, '.wxml').length;
const ownWxss = byExt(ownFiles, '.wxss').length;
console.log(wxmlCompiled
  ? `static: wxml compiled with wcc: ${wxmlCompiled} (${ownWxml} ours, ${wxmlCompiled - ownWxml} TDesign)`
  : `static: wxml: wcc refused the templates (${ownWxml} ours)`);
console.log(`static: wxss parsed: ${wxssParsed} (${ownWxss} ours)`);
console.log(`static: json parsed: ${Object.keys(json).length}; pages: ${(appJson.pages || []).length}; usingComponents resolved: ${usingChecked} across ${reachable.size} components`);
console.log(`static: main package ${(packageBytes / 1024).toFixed(0)} KB of ${SIZE_BUDGET / 1024} KB budget (${packaged.size} files)`);
if (failures.length) {
  failures.forEach((f) => console.error(`static: FAIL ${f}`));
  console.log(`static: ${failures.length} problem(s)`);
  process.exit(1);
}
console.log('static: all checks passed');
