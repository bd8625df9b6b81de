// The privacy policy summary the consent screen refers to; its version is what consent records.
const config = require('../../utils/config');

Page({
  data: {
    version: config.POLICY_VERSION,
  },
});
