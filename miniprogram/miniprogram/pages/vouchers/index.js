// 我的券: vouchers by status. An unused one opens to its code as a QR for the desk to scan
// (TDesign's t-qrcode, drawn on the phone, so it works offline at the counter); a redeemed one
// can be cancelled and its points come back.
const api = require('../../utils/api');
const errors = require('../../utils/errors');
const fmt = require('../../utils/format');
const store = require('../../utils/store');

const TABS = [
  { value: 'unused', label: '可使用' },
  { value: 'used', label: '已使用' },
  { value: 'expired', label: '已过期' },
  { value: 'cancelled', label: '已取消' },
];

const SOURCE = { redemption: '积分兑换', campaign: '活动赠送', birthday: '生日礼', comeback: '回店礼' };

function voucherView(v) {
  return {
    id: v.id,
    title: v.title,
    code: v.code,
    status: v.status,
    source: SOURCE[v.source] || '赠送',
    faceValue: v.face_value_fen ? fmt.yuan(v.face_value_fen) : '',
    expires: `有效期至 ${fmt.date(v.expires_on)}`,
    used: v.used_at ? `已于 ${fmt.datetime(v.used_at)} 使用` : '',
    cancellable: v.status === 'unused' && v.source === 'redemption' && v.points_cost > 0,
    pointsCost: v.points_cost,
  };
}

Page({
  data: {
    tabs: TABS,
    tab: 'unused',
    status: 'loading', // loading | ready | empty | not_member | error
    errorMessage: '',
    vouchers: [],
    openId: 0,
    done: true,
  },

  onLoad(query) {
    if (query && query.status && TABS.some((t) => t.value === query.status)) this.setData({ tab: query.status });
    this.load();
  },

  onPullDownRefresh() {
    this.load().then(() => wx.stopPullDownRefresh());
  },

  onReachBottom() {
    this.loadMore();
  },

  async load() {
    this.setData({ status: 'loading', vouchers: [], openId: 0 });
    this.cursor = null;
    try {
      const page = await api.vouchers(this.data.tab, null);
      this.cursor = page.next_cursor;
      const vouchers = (page.items || []).map(voucherView);
      this.setData({ vouchers, done: !page.next_cursor, status: vouchers.length ? 'ready' : 'empty' });
    } catch (e) {
      if (e.code === 'not_member') this.setData({ status: 'not_member' });
      else this.setData({ status: 'error', errorMessage: errors.messageOf(e) });
    }
  },

  async loadMore() {
    if (this.data.done || !this.cursor || this.loadingMore) return;
    this.loadingMore = true;
    try {
      const page = await api.vouchers(this.data.tab, this.cursor);
      this.cursor = page.next_cursor;
      this.setData({ vouchers: this.data.vouchers.concat((page.items || []).map(voucherView)), done: !page.next_cursor });
    } catch (e) {
      wx.showToast({ title: errors.messageOf(e), icon: 'none' });
    } finally {
      this.loadingMore = false;
    }
  },

  onRetry() {
    this.load();
  },

  onTab(e) {
    const { value } = e.currentTarget.dataset;
    if (value === this.data.tab) return;
    this.setData({ tab: value });
    this.load();
  },

  onToggle(e) {
    const id = Number(e.currentTarget.dataset.id);
    this.setData({ openId: this.data.openId === id ? 0 : id });
  },

  onCancel(e) {
    const id = Number(e.currentTarget.dataset.id);
    const v = this.data.vouchers.find((x) => x.id === id);
    if (!v) return;
    wx.showModal({
      title: '取消这张券？',
      content: `取消后「${v.title}」将失效，${v.pointsCost} 积分退回您的账户（已过期的积分不退回）。`,
      confirmText: '取消兑换',
      cancelText: '保留',
      success: (r) => {
        if (r && r.confirm) this.cancel(id);
      },
    });
  },

  async cancel(id) {
    try {
      const res = await api.cancelVoucher(id);
      if (typeof res.points_balance === 'number') store.patch('card', { points_balance: res.points_balance });
      wx.showToast({ title: res.points_returned ? `已取消，${res.points_returned} 积分已退回` : '已取消', icon: 'none' });
    } catch (err) {
      wx.showToast({ title: errors.messageOf(err), icon: 'none' });
    } finally {
      this.load();
    }
  },

  goRewards() {
    wx.navigateTo({ url: '/pages/rewards/index' });
  },
});
