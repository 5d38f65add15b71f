//! Host buffers kept between calls: the input copies and the per-thread scratch.
//!
//! A training step copies every convolution's input (megabytes) and frees the copy after the
//! backward pass. glibc serves a request that large with a fresh `mmap` and unmaps it on free,
//! so every step would pay a page fault per 4 KiB of it again (measured on the 2-core benchmark
//! machine: about 2 ms per 4 MiB, half as long as the 32→32 forward pass it feeds; the forward
//! pass took 7.6 ms with fresh buffers and 3.9 ms with these). Reusing the buffers keeps them
//! mapped; peak memory is unchanged, since a buffer waits here only while the copy it held
//! would have been freed.

use std::any::Any;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Buffers kept for reuse, of any element type, with their size in bytes; at most [`KEEP`].
static POOL: Mutex<Vec<(usize, Box<dyn Any + Send>)>> = Mutex::new(Vec::new());
const KEEP: usize = 16;

/// A vector that returns to the pool when dropped.
#[derive(Debug)]
pub(crate) struct Buffer<E: Send + 'static>(Vec<E>);

impl<E: Copy + Default + Send + 'static> Buffer<E> {
    /// `len` elements of unspecified values (the caller overwrites them all), in the smallest
    /// pooled buffer large enough, or a new one.
    pub(crate) fn take(len: usize) -> Self {
        let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let best = pool
            .iter()
            .enumerate()
            .filter_map(|(i, (_, b))| b.downcast_ref::<Vec<E>>().map(|v| (i, v.capacity())))
            .filter(|&(_, capacity)| capacity >= len)
            .min_by_key(|&(_, capacity)| capacity);
        let mut values = match best {
            Some((i, _)) => *pool
                .swap_remove(i)
                .1
                .downcast::<Vec<E>>()
                .unwrap_or_default(),
            None => Vec::new(),
        };
        drop(pool);
        values.resize(len, E::default());
        Buffer(values)
    }

    /// `len` zeros.
    pub(crate) fn zeroed(len: usize) -> Self {
        let mut buffer = Self::take(len);
        buffer.fill(E::default());
        buffer
    }
}

impl<E: Send + 'static> Drop for Buffer<E> {
    fn drop(&mut self) {
        let values = std::mem::take(&mut self.0);
        let bytes = values.capacity() * std::mem::size_of::<E>();
        if bytes == 0 {
            return;
        }
        let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if pool.len() >= KEEP {
            // Make room by dropping the smallest, the cheapest to allocate again, unless this
            // one is smaller still.
            let smallest = (0..pool.len()).min_by_key(|&i| pool[i].0);
            match smallest {
                Some(i) if pool[i].0 < bytes => drop(pool.swap_remove(i)),
                _ => return,
            }
        }
        pool.push((bytes, Box::new(values)));
    }
}

impl<E: Send + 'static> Deref for Buffer<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        &self.0
    }
}

impl<E: Send + 'static> DerefMut for Buffer<E> {
    fn deref_mut(&mut self) -> &mut [E] {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dropped buffer is handed out again for a request it can hold, and `zeroed` clears it.
    /// (The pool is shared with the other tests running at the same time, so the buffer is told
    /// apart by an element type nothing else uses, and by its contents.)
    #[test]
    fn reuses_a_dropped_buffer() {
        #[derive(Debug, Clone, Copy, Default, PartialEq)]
        struct Marker(u64);
        // Larger than anything the other tests leave, so that a full pool makes room for it.
        let mut buffer = Buffer::<Marker>::take(1 << 17);
        buffer.fill(Marker(7));
        let address = buffer.as_ptr();
        drop(buffer);
        let again = Buffer::<Marker>::take(1000);
        assert_eq!(again.len(), 1000);
        assert_eq!(again.as_ptr(), address);
        assert!(again.iter().all(|&m| m == Marker(7)));
        drop(again);
        let zeroed = Buffer::<Marker>::zeroed(1 << 17);
        assert!(zeroed.iter().all(|&m| m == Marker(0)));
    }

    #[test]
    fn keeps_a_bounded_number_of_buffers() {
        let buffers: Vec<_> = (1..=2 * KEEP).map(Buffer::<f64>::zeroed).collect();
        drop(buffers);
        let pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        assert!(pool.len() <= KEEP);
    }
}
