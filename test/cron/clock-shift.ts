/**
 * Preloaded into a passtore-cron child (`node --import clock-shift.js …`) to run it as if
 * PASSTORE_TEST_SHIFT_DAYS days had passed: `Date.now()` and `new Date()` move forward by
 * that much; everything else (the store, the certificates, the mail) is real. It lets the
 * tests cross notify_days thresholds and crt_ttl without waiting or a fake-time library.
 */
const days = Number(process.env.PASSTORE_TEST_SHIFT_DAYS ?? '0');

if (Number.isFinite(days) && days !== 0) {
  const offset = days * 86_400_000;
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  class ShiftedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(realNow() + offset);
      else super(...(args as [string | number | Date]));
    }

    static override now(): number {
      return realNow() + offset;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
}

export {};
