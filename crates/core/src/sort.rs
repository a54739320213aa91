//! Stable sorting with one copy of the standard library's sort in the wasm.
//!
//! `slice::sort_by` is instantiated for every element type and comparison closure it is called with, and
//! each copy of its driftsort (quicksort, merges, small-sort networks) weighs 3-6 KB of wasm: sixteen
//! copies made 90 KB of the code section (`node scripts/wasm-size.mjs --grep
//! core::slice::sort`). These functions sort a list of indices instead, through one instantiation
//! shared by every caller (the comparison called through `&mut dyn FnMut`), then move the elements into
//! that order. Same result as `sort_by` (stable: equal elements keep their order); for the short lists
//! of the request path (cache-key query parameters, rate-limit windows, `Allow` methods) the extra
//! indirection is a few nanoseconds.

use std::cmp::Ordering;

/// Like `v.sort_by(cmp)` (stable).
pub fn sort_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if v.len() < 2 {
        return;
    }
    let order = {
        let items: &[T] = v;
        order(items.len(), &mut |a, b| cmp(&items[a], &items[b]))
    };
    permute(v, order);
}

/// Like `v.sort_by_key(key)` (stable).
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

/// Like `v.sort()` (stable).
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, T::cmp);
}

/// The indices `0..n` in the order `cmp` puts them (stable). The only instantiation of the standard sort.
#[inline(never)]
fn order(n: usize, cmp: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| cmp(a, b));
    order
}

/// Rearrange `v` so that its element `k` is the one that was at `order[k]`, following each cycle of the
/// permutation with swaps.
fn permute<T>(v: &mut [T], mut order: Vec<usize>) {
    for start in 0..v.len() {
        let mut at = start;
        loop {
            let from = order[at];
            order[at] = at;
            if from == start || from == at {
                break;
            }
            v.swap(at, from);
            at = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A small deterministic generator (no dependency).
    fn numbers(seed: u64, n: usize, modulo: u64) -> Vec<u64> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % modulo
            })
            .collect()
    }

    #[test]
    fn same_order_as_the_standard_stable_sort() {
        for n in [0, 1, 2, 3, 7, 20, 33, 100, 1000] {
            for modulo in [1, 3, 10, 1_000_000] {
                // Pairs (key, original position): equal keys must keep their order.
                let input: Vec<(u64, usize)> = numbers(n as u64 + modulo, n, modulo)
                    .into_iter()
                    .enumerate()
                    .map(|(i, k)| (k, i))
                    .collect();
                let mut expected = input.clone();
                expected.sort_by_key(|a| a.0);
                let mut got = input.clone();
                sort_by(&mut got, |a, b| a.0.cmp(&b.0));
                assert_eq!(got, expected, "n={n} modulo={modulo}");
                let mut got = input.clone();
                sort_by_key(&mut got, |p| std::cmp::Reverse(p.0));
                let mut expected = input.clone();
                expected.sort_by_key(|p| std::cmp::Reverse(p.0));
                assert_eq!(got, expected, "by key, n={n} modulo={modulo}");
            }
        }
    }

    #[test]
    fn owned_values_are_moved_not_lost() {
        let mut v: Vec<String> = ["delete", "GET", "post", "GET", "", "PUT"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut expected = v.clone();
        expected.sort();
        sort(&mut v);
        assert_eq!(v, expected);
    }
}
