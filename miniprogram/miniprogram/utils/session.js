// Where the member stands in joining: consent given, phone bound, member or not. The backend
// says so in GET /member/account (consent, masked phone, linked, member, an open deletion
// request), which fromServer() takes as the truth, so a member on a new phone who consented
// before is not asked again. Login answers part of it too (customer_linked, member). What this
// phone remembers is only a fallback for an older backend without /member/account (there, a
// phone binding implies consent, because the backend refuses a binding without it).
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

// GET /member/account's answer, in this module's terms. Every field is set, so a consent or a
// link that went away (a deletion carried out by the store) is forgotten here too.
function fromServer(view) {
  const c = view.consent;
  return writeAccount({
    consented: !!c,
    policyVersion: c ? c.policy_version : '',
    marketing: !!(c && c.marketing),
    sensitiveHealth: !!(c && c.sensitive_health),
    phoneMasked: view.phone_masked || '',
    customerLinked: !!view.customer_linked,
    isMember: !!view.is_member,
    referralCode: view.referral_code || '',
    deletionRequestedAt: view.deletion_requested_at || '',
  });
}

// Consent comes first even for an account the store linked to a customer: joining needs it.
function step(a) {
  const acc = a || account();
  if (acc.isMember) return 'member';
  if (!acc.consented) return 'consent';
  if (acc.customerLinked || acc.phoneMasked) return 'join';
  return 'phone';
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
  fromServer,
  step,
  captureReferral,
  referralCode,
  clearReferral,
};
