// 积分规则: rendered from GET /member/rules, which the backend builds from the same
// configuration its code runs on, so this page can never promise what the system does not do.
const api = require('../../utils/api');
const errors = require('../../utils/errors');
const fmt = require('../../utils/format');

function rulesView(r) {
  return {
    earning: r.earning,
    bonuses: (r.bonuses || []).map((b) => b.description),
    bonusRule: r.bonus_rule,
    checkin: r.checkin,
    referral: r.referral,
    expiry: r.expiry,
    spending: r.spending,
    refunds: r.refunds,
    tiers: (r.tiers || []).map((t) => ({
      code: t.code,
      name: t.name,
      threshold: t.threshold_fen > 0 ? `近 12 个月消费满 ${fmt.yuan(t.threshold_fen)}` : '开通即享',
      benefits: t.benefits || [],
    })),
    tierRules: r.tier_rules || [],
  };
}

Page({
  data: {
    status: 'loading', // loading | ready | empty | error
    errorMessage: '',
    rules: null,
  },

  onLoad() {
    this.load();
  },

  async load() {
    this.setData({ status: 'loading' });
    try {
      const rules = rulesView(await api.rules());
      const hasAny = rules.earning || rules.tiers.length || rules.bonuses.length;
      this.setData({ rules, status: hasAny ? 'ready' : 'empty' });
    } catch (e) {
      this.setData({ status: 'error', errorMessage: errors.messageOf(e) });
    }
  },

  onRetry() {
    this.load();
  },
});
