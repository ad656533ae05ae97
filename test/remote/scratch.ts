import { TestSite } from '../support/site.js';
import { vaultHome, breakSftpAfter, runInVault, certDir } from './helpers.js';
import { mkdtempSync } from 'node:fs';
const site = await TestSite.start(1);
const h = site.hosts[0]!;
const home = vaultHome(site);
try {
  const st = mkdtempSync('/tmp/scratch/st-');
  for (const [n, how] of [[0, 'none'], [600, 'connection'], [600, 'sftp'], [20, 'connection'], [100, 'sftp']] as const) {
    if (how !== 'none') await breakSftpAfter(site, h, n, how);
    const r = await runInVault(site, 'scratch2', [home.configFile, st, h.address, h.rootPassword]);
    console.log(n, how, r);
    console.log(await certDir(site, h), await site.vaultState());
  }
} finally {
  await site.stop();
  home.remove();
}
