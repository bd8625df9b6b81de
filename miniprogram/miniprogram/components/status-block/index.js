// The loading, empty and error states every page shows the same way, so a member learns them
// once: a spinner while waiting, a calm sentence when there is nothing yet, and a way to try
// again when something failed.
Component({
  properties: {
    status: { type: String, value: '' }, // loading | empty | error
    message: { type: String, value: '' },
    actionText: { type: String, value: '' },
  },
  methods: {
    onAction() {
      this.triggerEvent('action');
    },
  },
});
