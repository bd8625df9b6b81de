// 员工绑定: a member of clinic staff scans the mini-program code the staff console shows, and
// this page binds their own WeChat to their staff account, so a campaign's test message
// reaches them before customers see it. The code's `scene` is a one-time ticket (a plain link
// may carry ?ticket= instead); the backend takes it once, so a refused ticket is never sent
// again from here: the console makes a new one in a moment.
const api = require('../../utils/api');
const errors = require('../../utils/errors');
const request = require('../../utils/request');
const store = require('../../utils/store');
const subscribe = require('../../utils/subscribe');

// The campaign test messages go out on the care templates (生日与关怀消息).
const SCENE = 'care';

// WeChat hands `scene` over URL-encoded; a ticket is URL-safe already, so decoding a plain
// ?ticket= again changes nothing.
function ticketOf(options) {
  const o = options || {};
  const raw = String(o.scene || o.ticket || '');
  try {
    return decodeURIComponent(raw).trim();
  } catch (e) {
    return raw.trim();
  }
}

function subscriptionText(subs) {
  const ids = (subs && subs.scenes && subs.scenes[SCENE]) || [];
  if (!ids.length) return '';
  const left = Math.min.apply(null, ids.map((id) => (subs.quotas && subs.quotas[id]) || 0));
  return left > 0 ? `已订阅，还可接收 ${left} 条测试消息` : '尚未订阅测试消息';
}

Page({
  data: {
    // loading | error (login failed) | missing | confirm | bound | invalid
    status: 'loading',
    errorMessage: '',
    bindError: '',
    invalidMessage: '',
    staffName: '',
    subscriptionText: '',
    busy: false,
  },

  onLoad(options) {
    this.ticket = ticketOf(options);
    this.offSubs = store.on('subscriptions', (subs) => this.setData({ subscriptionText: subscriptionText(subs) }));
    if (!this.ticket) {
      this.setData({ status: 'missing' });
      return;
    }
    this.signIn();
  },

  onUnload() {
    if (this.offSubs) this.offSubs();
  },

  // The binding goes to whichever WeChat is signed in, so sign in before asking to confirm.
  async signIn() {
    this.setData({ status: 'loading' });
    try {
      if (!request.getToken()) await request.login();
    } catch (e) {
      this.setData({ status: 'error', errorMessage: errors.messageOf(e) });
      return;
    }
    this.setData({ status: 'confirm' });
    // The subscription popup must open straight from the tap, so its templates are fetched now.
    subscribe.load();
  },

  onRetry() {
    this.signIn();
  },

  async onConfirm() {
    if (this.data.busy || this.data.status !== 'confirm') return;
    this.setData({ busy: true, bindError: '' });
    try {
      const res = await api.bindStaff(this.ticket);
      this.setData({ status: 'bound', staffName: res.staff_display_name || '' });
    } catch (e) {
      if (e.code === 'invalid_ticket') {
        this.setData({ status: 'invalid', invalidMessage: errors.messageOf(e) });
      } else {
        // Nothing was taken (or the answer was lost): the same ticket may be tried again.
        this.setData({ bindError: errors.messageOf(e) });
      }
    } finally {
      this.setData({ busy: false });
    }
  },

  // The tap: the popup first, nothing asynchronous before it.
  onSubscribe() {
    if (!subscribe.templatesFor(SCENE).length) {
      wx.showToast({ title: '暂时无法订阅，请稍后再试', icon: 'none' });
      subscribe.load();
      return Promise.resolve();
    }
    return subscribe.ask(SCENE).then((results) => {
      const accepted = Object.keys(results).some((k) => results[k] === 'accept');
      wx.showToast({ title: accepted ? '订阅成功，测试消息会发到本微信' : '您暂未订阅，将收不到测试消息', icon: 'none' });
    });
  },

  goHome() {
    wx.switchTab({ url: '/pages/index/index' });
  },
});
