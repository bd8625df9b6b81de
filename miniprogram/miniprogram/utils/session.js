// Where the member stands in joining: consent given, phone bound, member or not. The backend
// answers part of it at login (customer_linked, member); consent is remembered here after the
// member gives it, since no endpoint reads it back (a phone binding implies it, because the
// backend refuses a binding without consent).
const request = require('./request');
const store = require('./store');

const ACCOUNT_KEY = 'memberhub.account';
const REFERRAL_KEY = 'memberhub.referral';

function readAccount() {
  const a = wx.getStorageSync(ACCOUNT_KEY);
  return a && typeof a === 'object' ? a : {};
}

function writeAccount(partial) {
  const next = Object.assign({}, readAccount(), partial);
  wx.setStorageSync(ACCOUNT_KEY, next);
  store.set('account', next);
  return next;
}

function account() {
  return store.get('account') || readAccount();
}

// Login tells whether this WeChat is linked to a customer and whether that customer is a
// member; remember it so 我的 knows which step comes next.
request.onLogin((res) => {
  const partial = { customerLinked: !!res.customer_linked, isMember: !!res.member };
  if (res.customer_linked) partial.consented = true;
  writeAccount(partial);
  if (res.member) store.set('card', res.member);
});

function step(a) {
  const acc = a || account();
  if (acc.isMember) return 'member';
  if (acc.customerLinked || acc.phoneMasked) return 'join';
  if (acc.consented) return 'phone';
  return 'consent';
}

// A friend's referral code from the share card (?ref=CODE) or the mini-program code
// (scene=r%3DCODE), kept until this member joins.
function captureReferral(query) {
  if (!query) return '';
  let code = query.ref || '';
  if (!code && query.scene) {
    const scene = decodeURIComponent(query.scene);
    const m = /(?:^|&)r=([^&]+)/.exec(scene);
    if (m) code = m[1];
  }
  if (code) wx.setStorageSync(REFERRAL_KEY, code);
  return code;
}

function referralCode() {
  return wx.getStorageSync(REFERRAL_KEY) || '';
}

function clearReferral() {
  wx.removeStorageSync(REFERRAL_KEY);
}

module.exports = {
  ACCOUNT_KEY,
  REFERRAL_KEY,
  account,
  writeAccount,
  step,
  captureReferral,
  referralCode,
  clearReferral,
};
