//! A large read-mostly array in memory the kernel may back with transparent huge pages.
//!
//! With millions of sessions the index's entries take hundreds of megabytes, and a lookup reads
//! them at random: on 4 KiB pages nearly every read also misses the TLB, and the page walks
//! (a few per core at a time) then bound how many lookups overlap. Backed by 2 MiB pages the
//! whole array needs a few hundred TLB entries. The array lives in an anonymous mapping with
//! `MADV_HUGEPAGE` (through `memmap2`, so this crate keeps `unsafe` forbidden); arrays smaller
//! than a huge page, or a mapping the system refuses, stay in an ordinary `Vec`.

use std::ops::{Deref, DerefMut};

use bytemuck::Pod;
use memmap2::{Advice, MmapMut};

/// Huge pages are 2 MiB on x86-64 and (usually) aarch64.
const HUGE_PAGE: usize = 2 << 20;

/// The array: in a mapping advised for huge pages, or in a `Vec`.
#[derive(Debug)]
pub(crate) enum HugeArray<T: Pod> {
    /// Small, or no mapping could be made.
    Heap(Vec<T>),
    /// `len` elements at the start of the mapping.
    Mapped {
        /// The mapping (a whole number of huge pages).
        map: MmapMut,
        /// Elements in use.
        len: usize,
    },
}

impl<T: Pod> Default for HugeArray<T> {
    fn default() -> Self {
        HugeArray::Heap(Vec::new())
    }
}

impl<T: Pod> HugeArray<T> {
    /// The elements of `v`, moved into huge-page memory when they fill at least one huge page.
    pub(crate) fn from_vec(v: Vec<T>) -> HugeArray<T> {
        let bytes = v.len() * size_of::<T>();
        if bytes < HUGE_PAGE || size_of::<T>() == 0 {
            return HugeArray::Heap(v);
        }
        let size = bytes.div_ceil(HUGE_PAGE) * HUGE_PAGE;
        let Ok(mut map) = MmapMut::map_anon(size) else { return HugeArray::Heap(v) };
        // Advice only: without transparent huge pages the array works the same on small pages.
        let _ = map.advise(Advice::HugePage);
        map[..bytes].copy_from_slice(bytemuck::cast_slice(&v));
        HugeArray::Mapped { map, len: v.len() }
    }

    /// Bytes held (the whole mapping, or the vector's capacity).
    pub(crate) fn bytes(&self) -> usize {
        match self {
            HugeArray::Heap(v) => v.capacity() * size_of::<T>(),
            HugeArray::Mapped { map, .. } => map.len(),
        }
    }

    /// Bytes held in a mapping (not counted by the heap allocator).
    pub(crate) fn mapped_bytes(&self) -> usize {
        match self {
            HugeArray::Heap(_) => 0,
            HugeArray::Mapped { map, .. } => map.len(),
        }
    }
}

impl<T: Pod> Deref for HugeArray<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            HugeArray::Heap(v) => v,
            HugeArray::Mapped { map, len } => bytemuck::cast_slice(map.get(..len * size_of::<T>()).unwrap_or_default()),
        }
    }
}

impl<T: Pod> DerefMut for HugeArray<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            HugeArray::Heap(v) => v,
            HugeArray::Mapped { map, len } => {
                bytemuck::cast_slice_mut(map.get_mut(..*len * size_of::<T>()).unwrap_or_default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_arrays_stay_on_the_heap_and_large_ones_are_mapped() {
        let small = HugeArray::from_vec(vec![7u32; 1000]);
        assert!(matches!(small, HugeArray::Heap(_)));
        assert_eq!((small.len(), small[999], small.mapped_bytes()), (1000, 7, 0));
        let n = HUGE_PAGE / 4 + 3;
        let mut big = HugeArray::from_vec((0..n as u32).collect());
        assert_eq!(big.len(), n);
        assert_eq!(big[n - 1], n as u32 - 1);
        big[5] = 42;
        assert_eq!(big[5], 42);
        if let HugeArray::Mapped { map, .. } = &big {
            assert_eq!(map.len(), 2 * HUGE_PAGE);
        }
        assert_eq!(big.bytes() % HUGE_PAGE, 0);
    }
}
