Page({
  data: {}
});
