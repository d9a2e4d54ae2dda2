//! The few most recent distinct values, most recent last, held inline.

/// Up to `N` distinct values, most recent last: remembering a value moves it to the end, and the
/// oldest goes first when full. Held inline (no heap list to follow) so a line's recent calling
/// numbers share the cache lines of the rest of what its every call reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recent<T, const N: usize> {
    items: [T; N],
    len: u8,
}

impl<T: Copy + Default + PartialEq, const N: usize> Default for Recent<T, N> {
    fn default() -> Self {
        Recent { items: [T::default(); N], len: 0 }
    }
}

impl<T: Copy + Default + PartialEq, const N: usize> Recent<T, N> {
    /// The count is a byte: a list longer than 255 would not compile.
    const FITS: () = assert!(N <= u8::MAX as usize, "Recent holds at most 255 values");

    /// The values, oldest first.
    pub(crate) fn as_slice(&self) -> &[T] {
        self.items.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// How many values are held.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether `v` is among them.
    pub(crate) fn contains(&self, v: &T) -> bool {
        self.as_slice().contains(v)
    }

    /// Makes `v` the most recent.
    #[inline]
    pub(crate) fn remember(&mut self, v: T) {
        let () = Self::FITS;
        let len = usize::from(self.len);
        if len > 0 && self.items.get(len - 1) == Some(&v) {
            // The usual case: the same value as last time.
            return;
        }
        let held = self.items.get_mut(..len).unwrap_or_default();
        match held.iter().position(|x| *x == v) {
            Some(i) => {
                // Moved to the end; the ones after it move up.
                held.get_mut(i..).unwrap_or_default().rotate_left(1);
            }
            None if len >= N => {
                // The oldest goes, the new one takes the last place.
                self.items.rotate_left(1);
                if let Some(last) = self.items.last_mut() {
                    *last = v;
                }
            }
            None => {
                if let Some(slot) = self.items.get_mut(len) {
                    *slot = v;
                    self.len += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // The list it replaced: a `Vec`, most recent last.
    use crate::engine::remember as remember_in_vec;

    #[test]
    fn keeps_what_a_vec_kept_in_the_same_order() {
        let mut recent = Recent::<u64, 8>::default();
        let mut list = Vec::new();
        // A small generator: values from a range of 12, so they repeat, move and fall out.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = x % 12;
            recent.remember(v);
            remember_in_vec(&mut list, v, 8);
            assert_eq!(recent.as_slice(), &list[..]);
            assert_eq!(recent.len(), list.len());
            assert!(recent.contains(&v));
        }
        assert!(!recent.contains(&99));
    }
}
