//! An ordered set that also counts: [`RankedSet`] answers "how many keys come before this
//! one" in O(log n), which a `BTreeSet` can only answer by walking its range.
//!
//! It is a treap (a binary search tree whose nodes also carry a heap priority) kept in one
//! arena `Vec`, each node holding the size of its subtree. Node priorities come from a
//! counter mixed by SplitMix64, so the shape is the same on every run (the router stays
//! deterministic) and is balanced in expectation whatever order keys arrive in. It owns
//! nothing but its keys and must not know what they mean.
//!
//! Invariants (checked by [`RankedSet::check`] in the tests): in-order keys strictly
//! increase; every node's priority is at least its children's; every node's size is one plus
//! its children's sizes; freed slots hold no key.

/// No node: the empty subtree.
const NIL: usize = usize::MAX;

#[derive(Debug, Clone)]
struct Node<K> {
    /// `None` once the slot is free, so a removed key (an `Arc`) is dropped at once.
    key: Option<K>,
    priority: u64,
    size: usize,
    left: usize,
    right: usize,
}

/// A set of ordered keys with O(log n) expected insert, remove, first and rank.
#[derive(Debug, Clone)]
pub(super) struct RankedSet<K> {
    nodes: Vec<Node<K>>,
    /// Free slots of `nodes`, reused before the arena grows.
    free: Vec<usize>,
    root: usize,
    /// Counts the nodes made, for their priorities.
    made: u64,
}

impl<K> Default for RankedSet<K> {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            free: Vec::new(),
            root: NIL,
            made: 0,
        }
    }
}

impl<K: Ord> RankedSet<K> {
    /// How many keys the set holds.
    pub(super) fn len(&self) -> usize {
        self.size(self.root)
    }

    /// Whether the set is empty.
    pub(super) fn is_empty(&self) -> bool {
        self.root == NIL
    }

    /// The smallest key.
    pub(super) fn first(&self) -> Option<&K> {
        let mut at = self.root;
        let mut first = None;
        while at != NIL {
            first = Some(at);
            at = self.nodes[at].left;
        }
        first.map(|i| self.key(i))
    }

    /// Whether `key` is in the set.
    pub(super) fn contains(&self, key: &K) -> bool {
        let mut at = self.root;
        while at != NIL {
            match key.cmp(self.key(at)) {
                std::cmp::Ordering::Less => at = self.nodes[at].left,
                std::cmp::Ordering::Greater => at = self.nodes[at].right,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// Adds `key`; false when it was already there.
    pub(super) fn insert(&mut self, key: K) -> bool {
        if self.contains(&key) {
            return false;
        }
        let (less, rest) = self.split(self.root, &key);
        let node = self.make(key);
        let left = self.merge(less, node);
        self.root = self.merge(left, rest);
        true
    }

    /// Takes `key` out; false when it was not there.
    pub(super) fn remove(&mut self, key: &K) -> bool {
        let (less, rest) = self.split(self.root, key);
        let found = self.first_of(rest).is_some_and(|i| self.key(i) == key);
        let rest = if found { self.remove_first(rest) } else { rest };
        self.root = self.merge(less, rest);
        found
    }

    /// How many keys come before `key` in order (its 0-based rank, whether or not it is in
    /// the set).
    pub(super) fn rank(&self, key: &K) -> usize {
        self.count_while(|k| k < key)
    }

    /// How many keys, from the smallest, satisfy `holds`. `holds` must be monotone along the
    /// order (true for a prefix, then false): the count is found in one descent.
    pub(super) fn count_while(&self, holds: impl Fn(&K) -> bool) -> usize {
        let mut count = 0;
        let mut at = self.root;
        while at != NIL {
            let node = &self.nodes[at];
            if holds(self.key(at)) {
                count += self.size(node.left) + 1;
                at = node.right;
            } else {
                at = node.left;
            }
        }
        count
    }

    fn key(&self, i: usize) -> &K {
        self.nodes[i]
            .key
            .as_ref()
            .expect("a linked node holds a key")
    }

    fn size(&self, i: usize) -> usize {
        if i == NIL {
            0
        } else {
            self.nodes[i].size
        }
    }

    fn resize(&mut self, i: usize) {
        let size = 1 + self.size(self.nodes[i].left) + self.size(self.nodes[i].right);
        self.nodes[i].size = size;
    }

    fn make(&mut self, key: K) -> usize {
        self.made += 1;
        let node = Node {
            key: Some(key),
            priority: splitmix64(self.made),
            size: 1,
            left: NIL,
            right: NIL,
        };
        match self.free.pop() {
            Some(slot) => {
                self.nodes[slot] = node;
                slot
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        }
    }

    /// Splits subtree `at` into (keys < `key`, keys >= `key`).
    fn split(&mut self, at: usize, key: &K) -> (usize, usize) {
        if at == NIL {
            return (NIL, NIL);
        }
        if self.key(at) < key {
            let (less, rest) = self.split(self.nodes[at].right, key);
            self.nodes[at].right = less;
            self.resize(at);
            (at, rest)
        } else {
            let (less, rest) = self.split(self.nodes[at].left, key);
            self.nodes[at].left = rest;
            self.resize(at);
            (less, at)
        }
    }

    /// Joins two subtrees, every key of `a` below every key of `b`.
    fn merge(&mut self, a: usize, b: usize) -> usize {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a].priority > self.nodes[b].priority {
            let right = self.merge(self.nodes[a].right, b);
            self.nodes[a].right = right;
            self.resize(a);
            a
        } else {
            let left = self.merge(a, self.nodes[b].left);
            self.nodes[b].left = left;
            self.resize(b);
            b
        }
    }

    fn first_of(&self, mut at: usize) -> Option<usize> {
        if at == NIL {
            return None;
        }
        while self.nodes[at].left != NIL {
            at = self.nodes[at].left;
        }
        Some(at)
    }

    /// Removes the smallest key of subtree `at` (not empty); returns the new subtree.
    fn remove_first(&mut self, at: usize) -> usize {
        let left = self.nodes[at].left;
        if left == NIL {
            let right = self.nodes[at].right;
            self.nodes[at].key = None;
            self.free.push(at);
            return right;
        }
        let left = self.remove_first(left);
        self.nodes[at].left = left;
        self.resize(at);
        at
    }
}

#[cfg(test)]
impl<K: Ord + Clone> RankedSet<K> {
    /// The keys in order.
    fn keys(&self) -> Vec<K> {
        fn walk<K: Ord + Clone>(set: &RankedSet<K>, at: usize, out: &mut Vec<K>) {
            if at != NIL {
                walk(set, set.nodes[at].left, out);
                out.push(set.key(at).clone());
                walk(set, set.nodes[at].right, out);
            }
        }
        let mut out = Vec::new();
        walk(self, self.root, &mut out);
        out
    }

    /// Panics unless every invariant of the module documentation holds.
    fn check(&self) {
        fn walk<K: Ord>(set: &RankedSet<K>, at: usize) -> usize {
            if at == NIL {
                return 0;
            }
            let node = &set.nodes[at];
            for child in [node.left, node.right] {
                if child != NIL {
                    assert!(node.priority >= set.nodes[child].priority, "heap order");
                }
            }
            let size = 1 + walk(set, node.left) + walk(set, node.right);
            assert_eq!(node.size, size, "subtree size");
            size
        }
        walk(self, self.root);
        let keys = self.keys();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys in order");
        for &slot in &self.free {
            assert!(self.nodes[slot].key.is_none(), "a free slot holds no key");
        }
        assert_eq!(
            self.len() + self.free.len(),
            self.nodes.len(),
            "no slot lost"
        );
    }
}

/// SplitMix64: spreads a counter into well-mixed priorities.
fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// A deterministic stream of numbers below `bound`.
    fn numbers(seed: u64, count: usize, bound: u64) -> Vec<u64> {
        (0..count as u64)
            .map(|i| splitmix64(seed * 1_000_003 + i) % bound)
            .collect()
    }

    #[test]
    fn it_agrees_with_a_btreeset_under_random_inserts_and_removes() {
        // (seed, operations, key range): dense ranges repeat keys, sparse ones rarely do.
        let cases = [(1, 2_000, 50), (2, 2_000, 5_000), (3, 5_000, 200)];
        for (seed, count, bound) in cases {
            let mut set = RankedSet::default();
            let mut model = BTreeSet::new();
            for (i, key) in numbers(seed, count, bound).into_iter().enumerate() {
                if i % 3 == 2 {
                    assert_eq!(
                        set.remove(&key),
                        model.remove(&key),
                        "seed {seed}: remove {key}"
                    );
                } else {
                    assert_eq!(
                        set.insert(key),
                        model.insert(key),
                        "seed {seed}: insert {key}"
                    );
                }
                assert_eq!(set.len(), model.len(), "seed {seed}: len");
                assert_eq!(set.first(), model.first(), "seed {seed}: first");
            }
            set.check();
            assert_eq!(
                set.keys(),
                model.iter().copied().collect::<Vec<_>>(),
                "seed {seed}"
            );
            for probe in 0..bound {
                let rank = model.range(..probe).count();
                assert_eq!(set.rank(&probe), rank, "seed {seed}: rank of {probe}");
                assert_eq!(set.contains(&probe), model.contains(&probe), "seed {seed}");
            }
        }
    }

    #[test]
    fn count_while_counts_the_prefix_that_holds() {
        let mut set = RankedSet::default();
        for key in [5, 1, 9, 3, 7] {
            set.insert(key);
        }
        // (predicate bound, keys below it)
        let cases = [(0, 0), (1, 0), (2, 1), (6, 3), (9, 4), (100, 5)];
        for (bound, expected) in cases {
            assert_eq!(
                set.count_while(|k| *k < bound),
                expected,
                "keys below {bound}"
            );
        }
    }

    #[test]
    fn emptied_sets_reuse_their_slots_and_hold_no_keys() {
        let mut set = RankedSet::default();
        for key in 0..100 {
            set.insert(key);
        }
        for key in 0..100 {
            assert!(set.remove(&key), "{key} was there");
        }
        assert!(set.is_empty());
        assert_eq!(set.first(), None);
        assert!(!set.remove(&1), "nothing left to remove");
        set.check();
        for key in 0..100 {
            set.insert(key);
        }
        assert_eq!(set.nodes.len(), 100, "the arena did not grow");
        set.check();
    }

    #[test]
    fn keys_inserted_in_order_still_make_a_shallow_tree() {
        fn depth<K>(set: &RankedSet<K>, at: usize) -> usize {
            if at == NIL {
                0
            } else {
                1 + depth(set, set.nodes[at].left).max(depth(set, set.nodes[at].right))
            }
        }
        let mut set = RankedSet::default();
        for key in 0..100_000u32 {
            set.insert(key);
        }
        let depth = depth(&set, set.root);
        assert!(depth < 60, "depth {depth} for 100,000 sorted inserts");
        assert_eq!(set.rank(&50_000), 50_000);
    }
}
