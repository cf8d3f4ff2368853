//! Per-thread sharding for state every request touches (in-flight requests, metrics): each thread
//! works on its own shard, so the threads serving connections never wait for each other's locks.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Shards per sharded structure: more than the threads that touch them (one serving thread per
/// CPU, plus the control runtime), so that each usually gets its own.
pub const SHARDS: usize = 16;

/// This thread's shard number: threads take them in turn as they first ask.
pub fn index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// `SHARDS` default values.
pub fn new<T: Default>() -> Box<[T]> {
    (0..SHARDS).map(|_| T::default()).collect()
}
