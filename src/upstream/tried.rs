//! The set of servers a request has already been sent to.

/// The servers a request has already been sent to (indices into the pool).
#[derive(Debug, Clone, Default)]
pub struct Tried {
    /// Indices 0..64, inline: most pools are small.
    small: u64,
    /// Indices 64.., allocated only for big pools.
    large: Vec<u64>,
    count: usize,
}

impl Tried {
    pub fn insert(&mut self, i: usize) {
        if self.contains(i) {
            return;
        }
        if i < 64 {
            self.small |= 1 << i;
        } else {
            let w = i / 64 - 1;
            if self.large.len() <= w {
                self.large.resize(w + 1, 0);
            }
            self.large[w] |= 1 << (i % 64);
        }
        self.count += 1;
    }

    pub fn contains(&self, i: usize) -> bool {
        if i < 64 {
            self.small & (1 << i) != 0
        } else {
            self.large
                .get(i / 64 - 1)
                .is_some_and(|w| w & (1 << (i % 64)) != 0)
        }
    }

    pub fn remove(&mut self, i: usize) {
        if !self.contains(i) {
            return;
        }
        if i < 64 {
            self.small &= !(1 << i);
        } else {
            self.large[i / 64 - 1] &= !(1 << (i % 64));
        }
        self.count -= 1;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn len(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tried_set_handles_big_pools() {
        let mut t = Tried::default();
        for i in [0, 63, 64, 200, 200] {
            t.insert(i);
        }
        assert_eq!(t.len(), 4);
        assert!(t.contains(200) && t.contains(64) && !t.contains(65) && !t.contains(1000));
        for i in [200, 0, 5] {
            t.remove(i);
        }
        assert_eq!(t.len(), 2);
        assert!(!t.contains(200) && !t.contains(0) && t.contains(63) && t.contains(64));
    }
}
