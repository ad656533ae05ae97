/**
 * Counts in messages: `count(1, 'certificate')` is "1 certificate", `count(3, 'entry',
 * 'entries')` is "3 entries".
 */

/** `n` and the noun, singular for exactly 1. */
export function count(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : pluralForm}`;
}
