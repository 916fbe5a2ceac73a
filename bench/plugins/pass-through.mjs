// A publish interceptor that changes nothing: `npm run bench -- 1kib-1p1c --espresso-plugin
// bench/plugins/pass-through.mjs` measures what one loaded interceptor costs per message.
export default {
  name: 'pass-through',
  version: '1.0.0',
  setup(api) {
    api.onPublish(() => undefined);
  },
};
