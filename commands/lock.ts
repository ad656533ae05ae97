import { defineCommand } from '../src/command.js';

export default defineCommand({
  name: 'lock',
  summary: 'Wipe the data key from memory (the next command asks the passphrase)',
  usage: 'lock',
  args: [],
  async run(ctx) {
    ctx.session.lock();
    ctx.out.line('locked');
  },
});
