// 我的: joining (consent, then the phone from WeChat's getPhoneNumber button, then join), and for
// members their profile, message subscriptions, referral, bookings, vouchers and their data
// rights. Consent always comes before the phone: the backend refuses a binding without it,
// and a member should know what they agree to before handing over their number.
//
// Where the member stands comes from GET /member/account (consent and its choices, the masked
// phone, linked, member, an open deletion request), read with the card on every visit, so a
// new phone asks nothing that was already answered. Against an older backend without it, the
// page falls back to what this phone remembers.
const api = require('../../utils/api');
const config = require('../../utils/config');
const errors = require('../../utils/errors');
const fmt = require('../../utils/format');
const store = require('../../utils/store');
const session = require('../../utils/session');
const subscribe = require('../../utils/subscribe');
const { sandboxControl } = require('../../utils/request');

const SCENE_ORDER = ['booking', 'points', 'care'];

function subscriptionsView(subs) {
  if (!subs || !subs.scenes) return [];
  return SCENE_ORDER.filter((s) => (subs.scenes[s] || []).length).map((scene) => {
    const ids = subs.scenes[scene];
    const left = Math.min.apply(null, ids.map((id) => (subs.quotas && subs.quotas[id]) || 0));
    return {
      scene,
      name: subscribe.SCENE_NAMES[scene] || scene,
      left,
      text: left > 0 ? `还可接收 ${left} 次提醒` : '尚未订阅',
    };
  });
}

// An older backend answers 404/405 for what it does not have yet (the account view, the rights
// requests): the page falls back, and the member is told where to go instead of seeing an error.
function notOfferedYet(err) {
  return !!err && (err.status === 404 || err.status === 405) && err.code !== 'not_member';
}

// The card says whether a birthday is on file (`birthday`: date or null); an older backend's
// card says nothing, and then what this phone remembers decides.
function birthdayText(card, acc) {
  if (card && card.birthday) return fmt.date(card.birthday);
  if (card && card.birthday === null) return '';
  if (acc.birthday && acc.birthday !== 'set') return fmt.date(acc.birthday);
  return acc.birthday ? '已设置' : '';
}

// An instant as the China date: "2026年11月24日".
function dayOf(iso) {
  return fmt.date(fmt.chinaDate(iso));
}

// The data export's kinds of records, in the order a member thinks of them.
const EXPORT_KINDS = [
  ['customer', '个人资料'],
  ['wechat_account', '微信账户'],
  ['consents', '授权同意记录'],
  ['member', '会员资格'],
  ['consumptions', '消费记录'],
  ['points_entries', '积分明细'],
  ['vouchers', '券'],
  ['bookings', '会员日预约'],
];

function exportView(answer) {
  const data = (answer && answer.data) || {};
  const known = EXPORT_KINDS.filter(([key]) => key in data);
  // A kind a newer backend adds is still counted, under its own name.
  const extra = Object.keys(data).filter((k) => !EXPORT_KINDS.some(([key]) => key === k)).map((k) => [k, k]);
  const kinds = known.concat(extra).map(([key, name]) => {
    const v = data[key];
    const count = Array.isArray(v) ? v.length : v ? 1 : 0;
    return { key, name, count };
  });
  return {
    requestId: answer && answer.request_id,
    date: dayOf(answer && (answer.handled_at || answer.requested_at)),
    kinds,
    total: kinds.reduce((n, k) => n + k.count, 0),
  };
}

const CHOICE_NAMES = { marketing: '生日祝福与活动消息', sensitive: '治疗与皮肤健康信息记录' };

Page({
  data: {
    status: 'loading', // loading | ready | error
    errorMessage: '',
    step: 'consent', // consent | phone | join | member
    consent: { policy: false, marketing: false, sensitive: false },
    // The consent on file ({marketing, sensitive}); null when unknown (older backend).
    choices: null,
    savingChoice: '',
    phoneMasked: '',
    member: null,
    birthday: '',
    today: '',
    subscriptions: [],
    busy: false,
    sandbox: false,
    referralCode: '',
    deletion: null, // { date } while a deletion request is open
    deleting: false,
    exporting: false,
    exported: null, // { requestId, date, kinds: [{key, name, count}], total }
  },

  onLoad() {
    this.offSubs = store.on('subscriptions', (subs) => this.setData({ subscriptions: subscriptionsView(subs) }));
    // A card changed elsewhere (a redemption, the birthday) shows here at once.
    this.offCard = store.on('card', () => this.showAccount());
    this.setData({
      sandbox: config.sandboxHelpersEnabled(),
      today: fmt.chinaDate(new Date().toISOString()),
    });
    this.loaded = this.load();
  },

  onShow() {
    if (this.shownOnce) this.load({ quiet: true });
    this.shownOnce = true;
  },

  onUnload() {
    if (this.offSubs) this.offSubs();
    if (this.offCard) this.offCard();
  },

  onPullDownRefresh() {
    this.load({ quiet: true }).then(() => wx.stopPullDownRefresh());
  },

  memberView(card) {
    return {
      name: card.name || '亲爱的会员',
      tierName: card.tier.name,
      memberNo: card.member_no,
      balance: fmt.points(card.points_balance),
    };
  },

  // Everything shown about the account, from the account (session) and the card (store).
  showAccount() {
    const acc = session.account();
    const card = store.get('card');
    const known = !!acc.consented && typeof acc.marketing === 'boolean';
    this.setData({
      step: session.step(acc),
      phoneMasked: acc.phoneMasked || '',
      member: card ? this.memberView(card) : null,
      birthday: birthdayText(card, acc),
      choices: known ? { marketing: acc.marketing, sensitive: !!acc.sensitiveHealth } : null,
      deletion: acc.deletionRequestedAt ? { date: dayOf(acc.deletionRequestedAt) } : null,
    });
  },

  // GET /member/account, kept in the session; null from an older backend without it.
  fetchAccount() {
    return api.account().then(
      (view) => session.fromServer(view),
      (e) => {
        if (notOfferedYet(e)) return null;
        throw e;
      },
    );
  },

  // The card, or null for someone who has not joined.
  fetchCard() {
    return api.me().catch((e) => {
      if (e.code === 'not_member') return null;
      throw e;
    });
  },

  async load(opts = {}) {
    const keepShown = opts.quiet && this.data.status === 'ready';
    if (!keepShown) this.setData({ status: 'loading' });
    try {
      const [account, card] = await Promise.all([this.fetchAccount(), this.fetchCard()]);
      if (card) {
        // A card means joined (and so linked and consented), whatever an older backend says.
        session.writeAccount({ isMember: true, customerLinked: true, consented: true });
      } else if (!account) {
        session.writeAccount({ isMember: false });
      }
      // Forget a card that is no longer there (e.g. a deletion the store carried out).
      store.set('card', card);
      this.showAccount();
      this.setData({ status: 'ready' });
      if (card) {
        subscribe.load();
        api.referral().then((r) => {
          this.referral = r;
          this.setData({ referralCode: r.code });
        }, () => {});
      }
    } catch (e) {
      // A refresh that fails keeps what is shown; the first load says what went wrong.
      if (!keepShown) this.setData({ status: 'error', errorMessage: errors.messageOf(e) });
    }
  },

  onRetry() {
    this.load();
  },

  // --- joining -------------------------------------------------------------------------

  onConsentChange(e) {
    const { key } = e.currentTarget.dataset;
    this.setData({ [`consent.${key}`]: !!(e.detail && e.detail.checked) });
  },

  goPolicy() {
    wx.navigateTo({ url: '/pages/privacy/policy' });
  },

  async onConsent() {
    const c = this.data.consent;
    if (!c.policy) {
      wx.showToast({ title: '请先阅读并勾选同意隐私政策', icon: 'none' });
      return;
    }
    if (this.data.busy) return;
    this.setData({ busy: true });
    try {
      await api.consent({
        policy_version: config.POLICY_VERSION,
        marketing: c.marketing,
        sensitive_health: c.sensitive,
      });
      session.writeAccount({
        consented: true,
        policyVersion: config.POLICY_VERSION,
        marketing: c.marketing,
        sensitiveHealth: c.sensitive,
      });
      this.showAccount();
    } catch (err) {
      wx.showToast({ title: errors.messageOf(err), icon: 'none' });
    } finally {
      this.setData({ busy: false });
    }
  },

  // <button open-type="getPhoneNumber">: WeChat hands over a one-time code (never the number),
  // which the backend exchanges; a member who declines gets no code.
  onGetPhoneNumber(e) {
    const code = e.detail && e.detail.code;
    if (!code) {
      wx.showToast({ title: '需要绑定手机号才能开通会员哦', icon: 'none' });
      return null;
    }
    return this.bindPhone(code);
  },

  async bindPhone(code) {
    this.setData({ busy: true });
    try {
      const res = await api.bindPhone(code);
      session.writeAccount({ phoneMasked: res.phone_masked, customerLinked: true });
      this.showAccount();
      wx.showToast({
        title: res.linked_existing_customer ? '已找到您在门店的档案' : `已绑定 ${res.phone_masked}`,
        icon: 'none',
      });
    } catch (err) {
      if (err.code === 'consent_required') {
        session.writeAccount({ consented: false });
        this.showAccount();
      }
      wx.showToast({ title: errors.messageOf(err), icon: 'none' });
    } finally {
      this.setData({ busy: false });
    }
  },

  // Develop only: DevTools cannot produce a phone code, so the sandbox makes one up, for a new
  // number or for a demo member's (wx.setStorageSync('memberhub.sandboxPhone', '139...')).
  async onSandboxPhone() {
    if (!config.sandboxHelpersEnabled()) return;
    const code = `dev-phone-${Date.now().toString(36)}`;
    const phone = wx.getStorageSync('memberhub.sandboxPhone')
      || `1365555${String(Math.floor(Math.random() * 10000)).padStart(4, '0')}`;
    try {
      await sandboxControl('phone-code', { code, phone });
      await this.bindPhone(code);
    } catch (err) {
      wx.showToast({ title: errors.messageOf(err), icon: 'none' });
    }
  },

  async onJoin() {
    if (this.data.busy) return;
    this.setData({ busy: true });
    try {
      const card = await api.join(session.referralCode());
      session.clearReferral();
      session.writeAccount({ isMember: true, customerLinked: true, consented: true });
      store.set('card', card);
      this.showAccount();
      wx.showToast({ title: '欢迎成为会员', icon: 'none' });
      subscribe.load();
      wx.switchTab({ url: '/pages/index/index' });
    } catch (err) {
      if (err.code === 'validation_failed' && err.details.field === 'referral_code') {
        // A stale or mistyped invitation must not keep the member out.
        session.clearReferral();
        wx.showToast({ title: '邀请码已失效，请再点一次开通', icon: 'none' });
      } else {
        if (err.code === 'consent_required') session.writeAccount({ consented: false });
        if (err.code === 'phone_required') session.writeAccount({ customerLinked: false, phoneMasked: '' });
        this.showAccount();
        wx.showToast({ title: errors.messageOf(err), icon: 'none' });
      }
    } finally {
      this.setData({ busy: false });
    }
  },

  // --- member ----------------------------------------------------------------------------

  onBirthdayPicked(e) {
    const value = e.detail && e.detail.value;
    if (!value) return;
    wx.showModal({
      title: '确认生日',
      content: `${fmt.date(value)}\n生日设置后不能自行修改，生日当月消费积分双倍。`,
      confirmText: '确认',
      cancelText: '再看看',
      success: (r) => {
        if (r && r.confirm) this.saveBirthday(value);
      },
    });
  },

  async saveBirthday(value) {
    try {
      const card = await api.updateProfile({ birthday: value });
      session.writeAccount({ birthday: value });
      store.set('card', card);
      wx.showToast({ title: '生日已保存', icon: 'none' });
    } catch (err) {
      wx.showToast({ title: errors.messageOf(err), icon: 'none' });
      if (err.code === 'birthday_already_set') {
        // Set meanwhile (e.g. at the desk): the card shows which date.
        session.writeAccount({ birthday: 'set' });
        this.showAccount();
        try {
          store.set('card', await api.me());
        } catch (e) {
          // '已设置' stays; the next visit reads the card again.
        }
      }
    }
  },

  // The tap: the popup first, nothing asynchronous before it.
  onSubscribe(e) {
    const { scene } = e.currentTarget.dataset;
    return subscribe.ask(scene).then((results) => {
      const accepted = Object.keys(results).some((k) => results[k] === 'accept');
      wx.showToast({ title: accepted ? '订阅成功，到时会提醒您' : '您暂未订阅这类消息', icon: 'none' });
    });
  },

  goBookings() {
    wx.navigateTo({ url: '/pages/bookings/index' });
  },

  goVouchers() {
    wx.navigateTo({ url: '/pages/vouchers/index' });
  },

  goHistory() {
    wx.navigateTo({ url: '/pages/points/history' });
  },

  goReferral() {
    wx.navigateTo({ url: '/pages/referral/index' });
  },

  // --- privacy choices and data rights ------------------------------------------------------

  // Turning marketing messages or the health record on or off: a new consent record with the
  // policy version the member agreed to. The switch moves only once the backend has it.
  async onChoiceChange(e) {
    const { key } = e.currentTarget.dataset;
    const value = !!(e.detail && e.detail.value);
    const acc = session.account();
    if (!this.data.choices || this.data.savingChoice) return;
    const next = Object.assign({}, this.data.choices, { [key]: value });
    this.setData({ savingChoice: key });
    try {
      const res = await api.consent({
        policy_version: acc.policyVersion || config.POLICY_VERSION,
        marketing: next.marketing,
        sensitive_health: next.sensitive,
      });
      session.writeAccount({ marketing: !!res.marketing, sensitiveHealth: !!res.sensitive_health });
      this.showAccount();
      wx.showToast({ title: `已${value ? '开启' : '关闭'}${CHOICE_NAMES[key]}`, icon: 'none' });
    } catch (err) {
      wx.showToast({ title: errors.messageOf(err), icon: 'none' });
    } finally {
      this.setData({ savingChoice: '' });
    }
  },

  // The copy is answered at once; the page shows how many records of each kind it holds and
  // keeps the JSON (out of setData: it can be large) for the clipboard.
  async onExport() {
    if (this.data.exporting) return;
    this.setData({ exporting: true });
    wx.showLoading({ title: '正在整理', mask: true });
    try {
      const answer = await api.requestDataExport();
      wx.hideLoading();
      this.exportJson = JSON.stringify(answer, null, 2);
      this.setData({ exported: exportView(answer) });
      wx.showToast({ title: '已生成您的个人信息副本', icon: 'none' });
    } catch (err) {
      wx.hideLoading();
      this.rightFailed(err);
    } finally {
      this.setData({ exporting: false });
    }
  },

  onCopyExport() {
    if (!this.exportJson) return;
    wx.setClipboardData({
      data: this.exportJson,
      success: () => wx.showToast({ title: '已复制，可粘贴到备忘录或发给自己保存', icon: 'none' }),
    });
  },

  onDelete() {
    if (this.data.deletion || this.data.deleting) return;
    wx.showModal({
      title: '申请删除个人信息',
      content: '删除后个人信息将被匿名化，消费与积分记录按规定保留；门店处理后当前登录将失效。',
      confirmText: '确认申请',
      confirmColor: '#C0392B',
      cancelText: '再想想',
      success: (r) => {
        if (r && r.confirm) this.sendDeletion();
      },
    });
  },

  // 202 the first time, 200 with the same open request after: either way it is on file.
  async sendDeletion() {
    this.setData({ deleting: true });
    try {
      const res = await api.requestDeletion();
      this.deletionRequestId = res.request_id;
      session.writeAccount({ deletionRequestedAt: res.requested_at || new Date().toISOString() });
      this.showAccount();
      wx.showToast({ title: '已提交，门店会尽快处理', icon: 'none' });
    } catch (err) {
      this.rightFailed(err);
    } finally {
      this.setData({ deleting: false });
    }
  },

  rightFailed(err) {
    if (notOfferedYet(err)) {
      wx.showModal({
        title: '线上申请即将开放',
        content: '请联系您常去的门店为您办理，我们会在 15 个工作日内处理完毕。',
        showCancel: false,
        confirmText: '知道了',
      });
    } else {
      wx.showToast({ title: errors.messageOf(err), icon: 'none' });
    }
  },

  onShareAppMessage() {
    const code = this.referral && this.referral.code;
    return {
      title: '我在这里做皮肤管理，邀你一起成为会员',
      path: code ? `/pages/index/index?ref=${code}` : '/pages/index/index',
    };
  },
});
