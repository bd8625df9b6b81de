// The member mini-program. Pages load their own data through utils/api; what several pages
// share (the card, the account's joining step, the artwork manifest) lives in utils/store.
const session = require('./utils/session');
const assets = require('./utils/assets');

App({
  onLaunch(options) {
    // A friend's share card or mini-program code opens us with their referral code; keep it
    // until this member joins.
    session.captureReferral((options && options.query) || {});
    // Early, so the card's artwork is usually known before the card itself arrives.
    assets.load();
  },
  globalData: {},
});
