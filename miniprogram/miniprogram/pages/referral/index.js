// 邀请好友: the member's referral code, a share card to send in WeChat and the mini-program
// code (from the backend) for a friend to scan in the store. Both carry the code, which the
// friend's join sends back.
const api = require('../../utils/api');
const errors = require('../../utils/errors');
const assets = require('../../utils/assets');

Page({
  data: {
    status: 'loading', // loading | ready | error
    errorMessage: '',
    code: '',
    path: '',
    qrcode: '',
    qrcodeError: '',
    rewardText: '',
  },

  onLoad() {
    // For the share card's picture; a share before it arrives uses WeChat's page snapshot.
    assets.load();
    this.load();
  },

  async load() {
    this.setData({ status: 'loading' });
    try {
      const ref = await api.referral();
      this.setData({ code: ref.code, path: ref.path, status: 'ready' });
    } catch (e) {
      this.setData({ status: 'error', errorMessage: errors.messageOf(e) });
      return;
    }
    // The rules say what the member gets, in the backend's own words.
    api.rules().then((r) => this.setData({ rewardText: r.referral }), () => {});
    try {
      const file = await api.referralQrcode();
      this.setData({ qrcode: file, qrcodeError: '' });
    } catch (e) {
      this.setData({ qrcodeError: '小程序码暂时没能生成，可以先把邀请码告诉好友' });
    }
  },

  onRetry() {
    this.load();
  },

  onCopy() {
    wx.setClipboardData({ data: this.data.code });
  },

  onPreview() {
    if (this.data.qrcode) wx.previewImage({ urls: [this.data.qrcode] });
  },

  onShareAppMessage() {
    const path = this.data.path ? `/${this.data.path.replace(/^\//, '')}` : '/pages/index/index';
    const share = { title: '我在这里做皮肤管理，邀你一起成为会员', path };
    // Without imageUrl WeChat uses a snapshot of the page; an empty one is not documented to.
    const imageUrl = assets.assetUrl('referral-share');
    if (imageUrl) share.imageUrl = imageUrl;
    return share;
  },
});
