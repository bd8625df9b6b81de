// Subscribe messages. WeChat shows its popup only when `wx.requestSubscribeMessage` runs in the
// tap handler itself, before anything asynchronous, so the template ids are fetched when the
// page loads and kept here; the tap calls `ask` synchronously and the results are reported to
// the backend afterwards (the backend counts one send per accept).
const api = require('./api');
const store = require('./store');

const SCENE_NAMES = {
  booking: '会员日预约提醒',
  points: '积分与等级提醒',
  care: '生日与关怀消息',
};

const VALID = { accept: true, reject: true, ban: true, filter: true };

// Loads scenes and quotas; never throws (a page works without subscriptions).
async function load() {
  try {
    const res = await api.subscriptions();
    store.set('subscriptions', res);
    return res;
  } catch (e) {
    return store.get('subscriptions') || null;
  }
}

function templatesFor(scene) {
  const subs = store.get('subscriptions');
  const ids = (subs && subs.scenes && subs.scenes[scene]) || [];
  // WeChat takes at most 3 one-time templates per popup.
  return ids.slice(0, 3);
}

// Keeps only template ids we asked for with a status the backend knows.
function resultsOf(res, ids) {
  const out = {};
  ids.forEach((id) => {
    if (res && VALID[res[id]]) out[id] = res[id];
  });
  return out;
}

async function report(results) {
  if (!Object.keys(results).length) return null;
  try {
    const res = await api.reportSubscriptions(results);
    store.set('subscriptions', res);
    return res;
  } catch (e) {
    return null;
  }
}

// Call from the tap handler, first thing. Resolves with the reported results (possibly empty);
// never rejects, because a declined popup must not stop a booking.
function ask(scene) {
  const ids = templatesFor(scene);
  if (!ids.length || typeof wx.requestSubscribeMessage !== 'function') return Promise.resolve({});
  return new Promise((resolve) => {
    wx.requestSubscribeMessage({
      tmplIds: ids,
      success: (res) => {
        const results = resultsOf(res, ids);
        report(results).then(() => resolve(results));
      },
      fail: () => resolve({}),
    });
  });
}

module.exports = { SCENE_NAMES, load, templatesFor, ask, resultsOf };
