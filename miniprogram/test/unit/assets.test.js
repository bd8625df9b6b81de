const { mockBackend } = require('../helpers/mock-backend');
const fx = require('../helpers/fixtures');
const assets = require('../../miniprogram/utils/assets');
const config = require('../../miniprogram/utils/config');

const MANIFEST = 'GET /static/mp/manifest.json';

describe('artwork manifest', () => {
  test('before the manifest arrives every name is empty, so pages keep their plain colour', () => {
    expect(assets.assetUrl('card-gold')).toBe('');
    expect(assets.tierArtwork('gold')).toBe('');
  });

  test('loaded once from the backend without a session, names then resolve to hashed URLs', async () => {
    const backend = mockBackend({ [MANIFEST]: { status: 200, data: fx.manifest } });
    await Promise.all([assets.load(), assets.load()]);
    await assets.load();
    expect(backend.calls).toHaveLength(1);
    expect(wx.request.mock.calls[0][0].url).toBe('http://127.0.0.1:8080/static/mp/manifest.json');
    expect(backend.calls[0].header.Authorization).toBeUndefined();
    expect(wx.login).not.toHaveBeenCalled();
    expect(assets.assetUrl('card-gold')).toBe('http://127.0.0.1:8080/static/mp/card-gold.7d793037.png');
    expect(assets.assetUrl('event-banner')).toBe('http://127.0.0.1:8080/static/mp/event-banner.92eb5ffe.png');
    expect(assets.assetUrl('no-such-picture')).toBe('');
  });

  test('a tier without its own artwork gets the entry tier\'s', async () => {
    mockBackend({ [MANIFEST]: { status: 200, data: fx.manifest } });
    await assets.load();
    expect(assets.tierArtwork('diamond')).toBe('http://127.0.0.1:8080/static/mp/card-diamond.0cc175b9.png');
    expect(assets.tierArtwork('silver')).toBe('http://127.0.0.1:8080/static/mp/card-normal.5d41402a.png');
  });

  test('URLs use the backend the manifest came from', async () => {
    wx.setStorageSync(config.OVERRIDE_KEY, 'http://127.0.0.1:18080');
    // mockBackend knows only the default backend; this one answers whatever is asked.
    wx.request = jest.fn((o) => setTimeout(() => o.success({ statusCode: 200, data: fx.manifest }), 0));
    await assets.load();
    expect(wx.request.mock.calls[0][0].url).toBe('http://127.0.0.1:18080/static/mp/manifest.json');
    wx.setStorageSync(config.OVERRIDE_KEY, 'http://127.0.0.1:19090');
    expect(assets.assetUrl('card-gold')).toBe('http://127.0.0.1:18080/static/mp/card-gold.7d793037.png');
  });

  test('a failed manifest leaves names empty, never rejects, and a later load tries again', async () => {
    const backend = mockBackend({ [MANIFEST]: { fail: 'request:fail' } });
    await expect(assets.load()).resolves.toBeNull();
    expect(assets.assetUrl('card-gold')).toBe('');
    backend.set(MANIFEST, { status: 404, data: { error: { code: 'not_found', message: '请求的资源不存在' } } });
    await expect(assets.load()).resolves.toBeNull();
    expect(assets.assetUrl('card-gold')).toBe('');
    backend.set(MANIFEST, { status: 200, data: fx.manifest });
    await assets.load();
    expect(backend.callsTo('GET', '/static/mp/manifest.json')).toHaveLength(3);
    expect(assets.assetUrl('card-gold')).toMatch(/card-gold\.7d793037\.png$/);
  });

  test('only root-relative paths are taken from the manifest', async () => {
    mockBackend({
      [MANIFEST]: {
        status: 200,
        data: { assets: { 'card-gold': 'https://elsewhere.example/x.png', 'card-normal': '//cdn.example/y.png', 'event-banner': 42, 'referral-share': '/static/mp/referral-share.4a8a08f0.png' } },
      },
    });
    await assets.load();
    expect(assets.assetUrl('card-gold')).toBe('');
    expect(assets.assetUrl('card-normal')).toBe('');
    expect(assets.assetUrl('event-banner')).toBe('');
    expect(assets.assetUrl('referral-share')).toBe('http://127.0.0.1:8080/static/mp/referral-share.4a8a08f0.png');
  });

  test('listeners hear the manifest arrive', async () => {
    mockBackend({ [MANIFEST]: { status: 200, data: fx.manifest } });
    const heard = jest.fn();
    const off = assets.onChange(heard);
    await assets.load();
    expect(heard).toHaveBeenCalledTimes(1);
    off();
  });
});
