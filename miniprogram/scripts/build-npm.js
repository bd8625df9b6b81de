#!/usr/bin/env node
// "构建 npm" without WeChat DevTools: copies each mini-program npm package's own dist (the
// folder its package.json names under "miniprogram") into miniprogram/miniprogram_npm/<name>.
// For component libraries such as TDesign this is byte-identical to what DevTools and
// miniprogram-ci's packNpmManually produce (shared/reference/miniprogram.md, section 5.3).
// Plain JS packages would need DevTools' bundler, so they are refused rather than half-built.
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const appRoot = path.join(root, 'miniprogram');
const outDir = path.join(appRoot, 'miniprogram_npm');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

function copyDir(src, dst) {
  fs.mkdirSync(dst, { recursive: true });
  for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, entry.name);
    const d = path.join(dst, entry.name);
    if (entry.isDirectory()) copyDir(s, d);
    else if (entry.isFile()) fs.copyFileSync(s, d);
  }
}

fs.rmSync(outDir, { recursive: true, force: true });
let built = 0;
for (const name of Object.keys(pkg.dependencies || {})) {
  const dir = path.join(root, 'node_modules', name);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (!meta.miniprogram) {
    console.error(`build-npm: ${name} is not a mini-program npm package (no "miniprogram" field); build it in DevTools instead`);
    process.exit(1);
  }
  copyDir(path.join(dir, meta.miniprogram), path.join(outDir, name));
  built += 1;
  console.log(`build-npm: ${name}@${meta.version} -> miniprogram/miniprogram_npm/${name}`);
}
console.log(`build-npm: ${built} package(s) built`);
