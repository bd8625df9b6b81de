// 我的: joining (consent, then the phone from WeChat's getPhoneNumber button, then join), and for
// members their profile, message subscriptions, referral, bookings, vouchers and their data
// rights. Consent always comes before the phone: the backend refuses a binding without it,
// and a member should know what they agree to before handing over their number.
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

// Rights requests the backend does not take yet answer 404/405; the member is told where to go
// instead of seeing an error.
function notOfferedYet(err) {
  return err && (err.status === 404 || err.status === 405) && err.code !== 'not_member';
}

Page({
  data: {
    status: 'loading', // loading | ready | error
    errorMessage: '',
    step: 'consent', // consent | phone | join | member
    consent: { policy: false, marketing: false, sensitive: false },
    phoneMasked: '',
    member: null,
    birthday: '',
    today: '',
    subscriptions: [],
    busy: false,
    sandbox: false,
    referralCode: '',
  },

  onLoad() {
    this.offSubs = store.on('subscriptions', (subs) => this.setData({ subscriptions: subscriptionsView(subs) }));
    this.offCard = store.on('card', (card) => {
      if (card) this.setData({ member: this.memberView(card) });
    });
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

  showAccount() {
    const acc = session.account();
    this.setData({
      step: session.step(acc),
      phoneMasked: acc.phoneMasked || '',
      birthday: acc.birthday && acc.birthday !== 'set' ? fmt.date(acc.birthday) : acc.birthday ? '已设置' : '',
    });
  },

  async load(opts = {}) {
    if (!opts.quiet || this.data.status !== 'ready') this.setData({ status: 'loading' });
    try {
      const card = await api.me();
      session.writeAccount({ isMember: true, customerLinked: true, consented: true });
      store.set('card', card);
      this.showAccount();
      this.setData({ status: 'ready' });
      subscribe.load();
      api.referral().then((r) => {
        this.referral = r;
        this.setData({ referralCode: r.code });
      }, () => {});
    } catch (e) {
      if (e.code === 'not_member') {
        session.writeAccount({ isMember: false });
        this.showAccount();
        this.setData({ status: 'ready' });
      } else {
        this.setData({ status: 'error', errorMessage: errors.messageOf(e) });
      }
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
      session.writeAccount({ consented: true, marketing: c.marketing, sensitiveHealth: c.sensitive });
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
        if (err.code === 'consent_required') session.writeAccount({ consented: false, customerLinked: false });
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
      this.showAccount();
      wx.showToast({ title: '生日已保存', icon: 'none' });
    } catch (err) {
      if (err.code === 'birthday_already_set') {
        session.writeAccount({ birthday: 'set' });
        this.showAccount();
      }
      wx.showToast({ title: errors.messageOf(err), icon: 'none' });
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

  // --- data rights -------------------------------------------------------------------------

  onExport() {
    wx.showModal({
      title: '导出我的个人信息',
      content: '我们会整理您的会员资料、积分和预约记录，准备好后通知您查收。',
      confirmText: '申请导出',
      cancelText: '取消',
      success: (r) => {
        if (r && r.confirm) this.requestRight(api.requestDataExport, '已收到您的导出申请，准备好后会通知您');
      },
    });
  },

  onDelete() {
    wx.showModal({
      title: '申请删除账户',
      content: '删除后，您的会员资格、积分和未使用的券将一并失效，个人信息将匿名化处理（依法需保留的交易记录除外），且无法恢复。',
      confirmText: '确认申请',
      confirmColor: '#C0392B',
      cancelText: '再想想',
      success: (r) => {
        if (r && r.confirm) this.requestRight(api.requestDeletion, '已收到您的删除申请，我们会尽快处理');
      },
    });
  },

  async requestRight(call, done) {
    try {
      await call();
      wx.showToast({ title: done, icon: 'none' });
    } catch (err) {
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
