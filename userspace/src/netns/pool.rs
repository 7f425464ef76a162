//! A few threads working through many namespaces: each job may enter a namespace
//! ([`enter`](super::enter)) or make one ([`create_here`](super::create_here)); the
//! threads exit afterwards, so no thread outside the pool ever changes namespace.
//!
//! Why threads: most of a namespace's cost is the kernel's (creating it, netlink
//! requests handled inside `sendmsg`); a few threads keep both cores busy and overlap
//! the parts that sleep, without one thread per namespace.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads of the pool: enough to keep 2–8 cores busy while some wait on a lock.
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .clamp(2, 16)
}

/// `job` applied to every item on a few threads; results in the order of `items`.
pub fn map<T: Sync, R: Send>(items: &[T], job: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let threads = workers().min(items.len());
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return done;
                        };
                        done.push((i, job(item)));
                    }
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(done) => {
                    for (i, r) in done {
                        slots[i] = Some(r);
                    }
                }
                // A panicking job is a bug: pass it on as it was.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    // Every index below len was taken by a thread that returned normally.
    slots.into_iter().flatten().collect()
}
