// Artwork is served by the backend under /static/mp/ (the package stays far below WeChat's
// 2 MB limit). Each file's URL carries its content hash and is cached for a year, so the names
// cannot be known in advance: GET /static/mp/manifest.json (never cached) maps a stable name
// ("card-gold") to the current path ("/static/mp/card-gold.1a2b3c4d.png"). The app asks for it
// once at launch; until it arrives, or if it never does, assetUrl() is '' and pages show their
// plain colour, then update through onChange() when it comes.
const config = require('./config');
const { getPublic } = require('./request');
const store = require('./store');

const MANIFEST_PATH = '/static/mp/manifest.json';
const KEY = 'assets';

let pending = null;

function manifest() {
  return store.get(KEY) || null;
}

// Keeps only root-relative paths: anything else would point the <image> somewhere the
// manifest's own server did not mean.
function pathsOf(body) {
  const assets = body && typeof body === 'object' && body.assets;
  const out = {};
  if (!assets || typeof assets !== 'object') return out;
  Object.keys(assets).forEach((name) => {
    const p = assets[name];
    if (typeof p === 'string' && /^\/[^/]/.test(p)) out[name] = p;
  });
  return out;
}

// Resolves with the manifest, or null when it could not be had; never rejects. One request at
// a time; a failed one is forgotten, so a page opened later can try again.
function load() {
  const known = manifest();
  if (known) return Promise.resolve(known);
  if (!pending) {
    // The paths belong to the server that listed them, even if a developer re-points the
    // base URL afterwards.
    const base = config.baseUrl();
    pending = getPublic(MANIFEST_PATH).then(
      (body) => {
        pending = null;
        const m = { base, paths: pathsOf(body) };
        store.set(KEY, m);
        return m;
      },
      () => {
        pending = null;
        return null;
      },
    );
  }
  return pending;
}

function assetUrl(name) {
  const m = manifest();
  const p = m && m.paths[name];
  return p ? `${m.base}${p}` : '';
}

// A tier an admin added later has no artwork of its own; it gets the entry tier's.
function tierArtwork(tierCode) {
  return assetUrl(`card-${tierCode}`) || assetUrl('card-normal');
}

// Calls fn() whenever the manifest arrives; returns the function that stops it.
function onChange(fn) {
  return store.on(KEY, () => fn());
}

module.exports = { MANIFEST_PATH, load, assetUrl, tierArtwork, onChange };
