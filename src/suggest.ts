/**
 * "Did you mean": the known name closest to a mistyped one (a command, an option, a
 * configuration key), for the one-line errors the operator sees. Only close names are
 * offered (an edit distance of at most a third of the word, at least 1, at most 2, with a
 * swap of two neighbours counting once), so a wild guess gets no suggestion.
 */

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate closest to `word`, or undefined when none is close enough. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  const limit = Math.min(2, Math.max(1, Math.floor(w.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(w, c.toLowerCase());
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best !== undefined && bestDistance <= limit && best !== word ? best : undefined;
}

/** ` (did you mean NAME?)` for the closest candidate, or an empty string. */
export function didYouMean(word: string, candidates: Iterable<string>, format: (name: string) => string = (n) => n): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : ` (did you mean ${format(c)}?)`;
}
