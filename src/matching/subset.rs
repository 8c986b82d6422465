//! Bounded subset-sum: which few of a handful of candidates add up to a target. Used for batch
//! deposits (one bank line, several invoices) and instalments (one invoice, several bank lines).
//! The candidate list, the group size and the number of search steps are capped, so the cost of
//! one search is bounded whatever the input.

/// Limits of one search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Largest group.
    pub max_size: usize,
    /// Search steps before giving up (the solutions found so far are kept).
    pub max_steps: u64,
    /// Solutions to collect at most.
    pub max_solutions: usize,
}

/// Subsets of at least two `items` (id, positive amount) whose sum lies within `tolerance` of
/// `target`. Exact solutions come first, then by smaller difference and fewer items; when an exact
/// solution exists, inexact ones are dropped.
pub fn find(target: i64, tolerance: i64, items: &[(u32, i64)], caps: Caps) -> Vec<Vec<u32>> {
    // Exact sums first, in a search of their own, so that near-sums cannot use up the caps.
    let exact = search(target, 0, items, caps);
    if !exact.is_empty() || tolerance <= 0 {
        return exact;
    }
    search(target, tolerance, items, caps)
}

/// The exact solutions of a search for `target` among `items`, and whether they are all there
/// are: true only when the search ran to its end, within its step cap, without stopping at
/// `max_solutions`.
pub fn find_exact(target: i64, items: &[(u32, i64)], caps: Caps) -> (Vec<Vec<u32>>, bool) {
    let (found, complete) = search_all(target, 0, items, caps);
    (found, complete)
}

fn search(target: i64, tolerance: i64, items: &[(u32, i64)], caps: Caps) -> Vec<Vec<u32>> {
    search_all(target, tolerance, items, caps).0
}

fn search_all(target: i64, tolerance: i64, items: &[(u32, i64)], caps: Caps) -> (Vec<Vec<u32>>, bool) {
    let tolerance = tolerance.max(0);
    let (low, high) = (target.saturating_sub(tolerance), target.saturating_add(tolerance));
    let mut sorted: Vec<(u32, i64)> = items.iter().copied().filter(|(_, a)| *a > 0 && *a <= high).collect();
    // Largest first; equal amounts keep the caller's order (its likeliest candidates first), so
    // that when many combinations add up, the likeliest are among those found within the caps.
    sorted.sort_by_key(|x| std::cmp::Reverse(x.1));
    // What the items before each position add up to, in 128 bits so that no sum overflows.
    let prefix: Vec<i128> = std::iter::once(0)
        .chain(sorted.iter().scan(0i128, |s, x| {
            *s += i128::from(x.1);
            Some(*s)
        }))
        .collect();
    let mut search = Search {
        items: &sorted,
        prefix: &prefix,
        target,
        low,
        high,
        tolerance,
        caps,
        steps: 0,
        chosen: Vec::with_capacity(caps.max_size),
        found: Vec::new(),
    };
    search.walk(0, 0);
    let complete = search.steps <= caps.max_steps && search.found.len() < caps.max_solutions;
    let mut found = search.found;
    found.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.len().cmp(&b.1.len())).then(a.1.cmp(&b.1)));
    if found.first().is_some_and(|f| f.0 == 0) {
        found.retain(|f| f.0 == 0);
    }
    (found.into_iter().map(|(_, ids)| ids).collect(), complete)
}

struct Search<'a> {
    /// Candidates, largest amount first.
    items: &'a [(u32, i64)],
    /// `prefix[i]`: the first `i` items' sum.
    prefix: &'a [i128],
    target: i64,
    /// `target` less and plus the tolerance.
    low: i64,
    high: i64,
    tolerance: i64,
    caps: Caps,
    steps: u64,
    chosen: Vec<u32>,
    found: Vec<(i64, Vec<u32>)>,
}

impl Search<'_> {
    /// Extends the chosen items (adding up to `sum`, never above `high`) with items from `start`
    /// on. Each call is one step of the cap.
    fn walk(&mut self, start: usize, sum: i64) {
        self.steps += 1;
        if self.steps > self.caps.max_steps || self.found.len() >= self.caps.max_solutions {
            return;
        }
        let diff = (sum - self.target).abs();
        if self.chosen.len() >= 2 && diff <= self.tolerance {
            let mut ids = self.chosen.clone();
            ids.sort_unstable();
            self.found.push((diff, ids));
            if diff == 0 {
                return;
            }
        }
        if self.chosen.len() >= self.caps.max_size {
            return;
        }
        // Items larger than the room left can never be added: with the largest first, they are a
        // prefix of the rest, skipped at once rather than one by one. (What is left only shrinks
        // from item to item, so a search that would have stopped among them stops at the first
        // item that fits too.)
        let room = self.high - sum;
        let rest = self.items.get(start..).unwrap_or(&[]);
        let first = start + rest.partition_point(|x| x.1 > room);
        // With `slots` items still to add, the most a group can reach from item `i` on is the
        // sum of the `slots` items from `i` (the largest left). Once that falls short of the
        // target, so does everything after it: nothing more is tried there.
        let slots = self.caps.max_size - self.chosen.len();
        let reach = |i: usize| {
            let end = (i + slots).min(self.items.len());
            self.prefix.get(end).copied().unwrap_or(0) - self.prefix.get(i).copied().unwrap_or(0)
        };
        for i in first..self.items.len() {
            let Some(&(id, amount)) = self.items.get(i) else { break };
            if i128::from(sum) + reach(i) < i128::from(self.low) {
                break;
            }
            self.chosen.push(id);
            self.walk(i + 1, sum + amount);
            self.chosen.pop();
            if self.steps > self.caps.max_steps || self.found.len() >= self.caps.max_solutions {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps { max_size: 6, max_steps: 100_000, max_solutions: 4 };

    #[test]
    fn a_batch_is_split_into_the_invoices_it_pays() {
        let items = [(1, 100), (2, 250), (3, 75), (4, 40)];
        assert_eq!(find(425, 0, &items, CAPS), vec![vec![1, 2, 3]]);
    }

    #[test]
    fn equal_amounts_give_several_solutions_so_the_group_is_ambiguous() {
        let items = [(1, 100), (2, 100), (3, 200)];
        assert_eq!(find(300, 0, &items, CAPS).len(), 2);
    }

    #[test]
    fn an_inexact_sum_is_offered_only_without_an_exact_one() {
        let items = [(1, 100), (2, 98), (3, 2)];
        assert_eq!(find(198, 5, &items, CAPS), vec![vec![1, 2]]);
        assert_eq!(find(197, 5, &[(1, 100), (2, 98)], CAPS), vec![vec![1, 2]]);
    }

    #[test]
    fn near_sums_do_not_crowd_out_an_exact_one() {
        let items = [(1, 67), (2, 38), (3, 38), (4, 38), (5, 38), (6, 38), (7, 33)];
        let caps = Caps { max_size: 6, max_steps: 100_000, max_solutions: 2 };
        assert_eq!(find(100, 5, &items, caps), vec![vec![1, 7]]);
    }

    #[test]
    fn a_single_exact_sum_is_unique_only_when_the_search_ran_to_its_end() {
        let items = [(1, 210_000), (2, 345_000), (3, 175_000), (4, 98_000)];
        assert_eq!(find_exact(730_000, &items, CAPS), (vec![vec![1, 2, 3]], true));
        let cramped = Caps { max_size: 6, max_steps: 2, max_solutions: 2 };
        assert!(!find_exact(730_000, &items, cramped).1);
    }

    #[test]
    fn equal_amounts_are_tried_in_the_order_given_so_the_likeliest_combination_is_found_first() {
        // Five invoices of one amount; the caller lists the three the payment quotes first. With
        // room for one solution, those are the one found, whatever their positions.
        let items = [(9, 100), (8, 100), (7, 100), (1, 100), (2, 100)];
        let caps = Caps { max_size: 6, max_steps: 1_000, max_solutions: 1 };
        assert_eq!(find(300, 0, &items, caps), vec![vec![7, 8, 9]]);
    }

    #[test]
    fn two_exact_sums_are_not_unique() {
        let items = [(1, 100), (2, 100), (3, 200)];
        let caps = Caps { max_size: 6, max_steps: 1_000, max_solutions: 2 };
        let (found, complete) = find_exact(300, &items, caps);
        assert_eq!(found.len(), 2);
        assert!(!complete);
    }

    /// The search as first written: every item tried in turn, sums in 128 bits. The search in use
    /// skips items too large for what is left at once and stops where the items that still fit
    /// cannot reach the target: it takes fewer steps, so within its caps it finds all the reference
    /// finds (and, where the reference ran out of steps, perhaps more).
    fn reference(target: i64, tolerance: i64, items: &[(u32, i64)], caps: Caps) -> (Vec<Vec<u32>>, bool) {
        struct Ref {
            items: Vec<(u32, i64)>,
            suffix: Vec<i128>,
            target: i128,
            tolerance: i128,
            caps: Caps,
            steps: u64,
            chosen: Vec<u32>,
            found: Vec<(i128, Vec<u32>)>,
        }
        fn walk(s: &mut Ref, start: usize, sum: i128) {
            s.steps += 1;
            if s.steps > s.caps.max_steps || s.found.len() >= s.caps.max_solutions {
                return;
            }
            let diff = (sum - s.target).abs();
            if s.chosen.len() >= 2 && diff <= s.tolerance {
                let mut ids = s.chosen.clone();
                ids.sort_unstable();
                s.found.push((diff, ids));
                if diff == 0 {
                    return;
                }
            }
            if s.chosen.len() >= s.caps.max_size {
                return;
            }
            for i in start..s.items.len() {
                let (id, amount) = s.items[i];
                if sum + s.suffix[i] < s.target - s.tolerance {
                    break;
                }
                let next = sum + i128::from(amount);
                if next > s.target + s.tolerance {
                    continue;
                }
                s.chosen.push(id);
                walk(s, i + 1, next);
                s.chosen.pop();
                if s.steps > s.caps.max_steps || s.found.len() >= s.caps.max_solutions {
                    return;
                }
            }
        }
        let mut sorted: Vec<(u32, i64)> =
            items.iter().copied().filter(|(_, a)| *a > 0 && *a <= target + tolerance).collect();
        sorted.sort_by_key(|x| std::cmp::Reverse(x.1));
        let mut suffix = vec![0i128; sorted.len() + 1];
        for i in (0..sorted.len()).rev() {
            suffix[i] = i128::from(sorted[i].1) + suffix[i + 1];
        }
        let mut s = Ref {
            items: sorted,
            suffix,
            target: i128::from(target),
            tolerance: i128::from(tolerance),
            caps,
            steps: 0,
            chosen: Vec::new(),
            found: Vec::new(),
        };
        walk(&mut s, 0, 0);
        let complete = s.steps <= caps.max_steps && s.found.len() < caps.max_solutions;
        let mut found = s.found;
        found.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.len().cmp(&b.1.len())).then(a.1.cmp(&b.1)));
        if found.first().is_some_and(|f| f.0 == 0) {
            found.retain(|f| f.0 == 0);
        }
        (found.into_iter().map(|(_, ids)| ids).collect(), complete)
    }

    proptest::proptest! {
        #[test]
        fn pruning_loses_nothing_the_reference_search_finds(
            amounts in proptest::collection::vec(1i64..5_000, 0..24),
            target in 1i64..20_000,
            tolerance in 0i64..50,
            max_size in 2usize..7,
            max_steps in 1u64..3_000,
            max_solutions in 1usize..5,
        ) {
            let items: Vec<(u32, i64)> = (0u32..).zip(amounts).collect();
            let caps = Caps { max_size, max_steps, max_solutions };
            let (found, complete) = search_all(target, tolerance, &items, caps);
            let (expected, ran_to_its_end) = reference(target, tolerance, &items, caps);
            if ran_to_its_end {
                proptest::prop_assert!(complete);
                proptest::prop_assert_eq!(&found, &expected);
            }
            // Where the reference ran out of steps, the pruned search has reached at least as far
            // in the same order. (With a tolerance, what it found further may be an exact sum,
            // before which near sums give way.)
            if tolerance == 0 {
                for group in &expected {
                    proptest::prop_assert!(found.contains(group), "{:?} lost; found {:?}", group, found);
                }
            }
        }
    }

    #[test]
    fn a_candidate_that_exactly_fills_what_is_left_is_still_tried() {
        // All six add up to 15,781, the target plus its tolerance; the five largest leave room for
        // exactly 453, the last item. Skipping items as large as the room, not only larger ones,
        // would lose the only solution. Seven steps (the empty start and one per item) walk
        // straight down to it.
        let items: Vec<(u32, i64)> = (0u32..).zip([453, 3026, 2632, 2855, 4011, 2804]).collect();
        let caps = Caps { max_size: 6, max_steps: 7, max_solutions: 1 };
        let found = search_all(15_779, 2, &items, caps);
        assert_eq!(found, (vec![vec![0, 1, 2, 3, 4, 5]], false));
        assert_eq!(found, reference(15_779, 2, &items, caps));
    }

    #[test]
    fn the_search_stops_at_its_step_cap() {
        let items: Vec<(u32, i64)> = (0..40).map(|i| (i, 1_000_003 + i64::from(i) * 7)).collect();
        let caps = Caps { max_size: 8, max_steps: 5_000, max_solutions: 4 };
        let _ = find(1, 0, &items, caps);
        let _ = find(9_999_999_999, 0, &items, caps);
        assert!(find(0, 0, &[], caps).is_empty());
    }
}
