import { defineCommand } from '../src/command.js';

export default defineCommand({
  name: 'exit',
  aliases: ['quit'],
  summary: 'Wipe the key and leave',
  usage: 'exit',
  args: [],
  async run(ctx) {
    ctx.session.lock();
    ctx.session.exit();
  },
});
