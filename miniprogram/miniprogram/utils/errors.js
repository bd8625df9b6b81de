// Turns the backend's error envelope ({"error": {"code", "message", ...}}) into text a member
// can act on. The backend's own message is already Chinese; the table below words the cases a
// member meets most in a warmer way and says what to do next. Unknown codes keep the server's
// message, so a new backend error still reads sensibly before this table learns it.

const MESSAGES = {
  // Member day
  slot_full: '这个时段已经约满了，您可以加入候补，有名额空出时会按顺序为您预约',
  not_open_yet: '还没到您的预约开放时间，请稍后再来',
  already_booked: '您已预约过本场会员日，每场限约一次',
  tier_too_low: '当前会员等级暂不满足条件，升级后即可参与',
  booking_closed: '本场会员日已停止预约',
  event_cancelled: '这场会员日已取消，给您带来不便，敬请谅解',
  cancel_deadline_passed: '已过取消截止时间，如需调整请联系门店',
  not_cancellable: '该预约已到店签到或已结束，无法取消',
  slot_available: '这个时段还有名额，可以直接预约',
  already_promoted: '您已候补成功，如需取消请在“我的预约”中取消该预约',
  // Points and rewards
  insufficient_points: '积分还不够，再攒一攒就可以兑换啦',
  sold_out: '这份礼品已经兑完了，看看其他礼品吧',
  limit_reached: '您已达到这份礼品的兑换上限',
  reward_unavailable: '这份礼品暂时不可兑换',
  reward_changed: '礼品信息刚刚更新，请刷新后再试',
  voucher_not_cancellable: '该券已使用、已取消或已过期，不能取消',
  already_checked_in: '今天已经签到过了，明天再来吧',
  // Membership and account
  not_member: '您还不是会员，开通后即可使用',
  consent_required: '请先阅读并同意隐私政策',
  phone_required: '请先绑定手机号',
  phone_code_invalid: '手机号授权已过期，请再点一次授权按钮',
  phone_bound_elsewhere: '该手机号已绑定其他微信账号，如有疑问请联系门店',
  already_bound: '当前微信已绑定其他手机号，如需更换请联系门店',
  birthday_already_set: '生日已设置，如需修改请联系门店',
  // Staff binding (the console's one-time code)
  invalid_ticket: '绑定码无效或已过期，请在后台重新生成',
  // Sessions and WeChat
  unauthorized: '登录状态已失效，请稍后重试',
  wechat_code_invalid: '登录凭证已失效，请重新进入小程序',
  wechat_login_blocked: '该微信账号暂时无法登录，如有疑问请联系门店',
  wechat_unavailable: '微信服务暂时不可用，请稍后再试',
  wechat_error: '微信服务暂时出了点问题，请稍后再试',
  // Generic
  rate_limited: '操作有点频繁，请稍等片刻再试',
  idempotency_key_reused: '请求重复了，请刷新后重试',
  internal_error: '服务器开小差了，请稍后再试',
  network: '网络不太顺畅，请检查网络后重试',
  timeout: '网络不太顺畅，请检查网络后重试',
};

// Codes whose server message carries the specifics (which tier, why it closed, which field),
// so the server's text is shown in preference to the table's generic wording.
const PREFER_SERVER = {
  tier_too_low: true,
  booking_closed: true,
  validation_failed: true,
  not_found: true,
};

const FALLBACK = '出了点小问题，请稍后再试';

class ApiError extends Error {
  constructor({ status, code, message, serverMessage, details }) {
    super(message);
    this.name = 'ApiError';
    this.status = status || 0;
    this.code = code || 'unknown';
    this.serverMessage = serverMessage || '';
    this.details = details || {};
  }
}

function friendlyMessage(code, serverMessage) {
  if (PREFER_SERVER[code] && serverMessage) return serverMessage;
  return MESSAGES[code] || serverMessage || FALLBACK;
}

function parseBody(data) {
  if (typeof data === 'string') {
    try {
      return JSON.parse(data);
    } catch (e) {
      return null;
    }
  }
  return data;
}

function fromResponse(res) {
  const body = parseBody(res && res.data);
  // The envelope nests the error; tolerate a flat {code, message} as well.
  const err = (body && (body.error || body)) || {};
  const status = (res && res.statusCode) || 0;
  let code = typeof err.code === 'string' ? err.code : '';
  if (!code) code = status >= 500 ? 'internal_error' : status === 401 ? 'unauthorized' : `http_${status}`;
  const serverMessage = typeof err.message === 'string' ? err.message : '';
  const details = {};
  Object.keys(err).forEach((k) => {
    if (k !== 'code' && k !== 'message') details[k] = err[k];
  });
  return new ApiError({ status, code, message: friendlyMessage(code, serverMessage), serverMessage, details });
}

function network(errMsg) {
  const timeout = /timeout/i.test(errMsg || '');
  const code = timeout ? 'timeout' : 'network';
  return new ApiError({ status: 0, code, message: MESSAGES[code], serverMessage: errMsg || '' });
}

// Any thrown value as text for a toast or an error state.
function messageOf(err) {
  if (!err) return FALLBACK;
  if (err instanceof ApiError || err.name === 'ApiError') return err.message;
  return FALLBACK;
}

module.exports = { ApiError, MESSAGES, friendlyMessage, fromResponse, network, messageOf, FALLBACK };
