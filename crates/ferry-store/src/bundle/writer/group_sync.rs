//! Group commit for `fdatasync`: every slot that completes needs its bytes durable before
//! its `done` line is journaled, and the bundle is one file, so one `fdatasync` covers every
//! slot written before it began. A thread that needs one either starts it, or, when one is
//! already running (which may have begun before its last write), waits for the next, which
//! the first thread to find none running starts for all who wait. Under load the syncs run
//! back to back, each covering every blob completed meanwhile, instead of one per blob queued
//! on the file's lock: the crash guarantee is unchanged (a `done` line always follows an
//! `fdatasync` that began after the slot's last write).

use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Default)]
struct State {
    /// Syncs started so far (the number of the latest).
    started: u64,
    /// The number of the latest sync that ended.
    finished: u64,
    running: bool,
    /// The number and error of the latest sync that failed.
    failed: Option<(u64, String)>,
    /// Syncs run (for tests and the debug log): fewer than calls when they were shared.
    runs: u64,
}

/// See the module documentation.
#[derive(Default)]
pub struct GroupSync {
    state: Mutex<State>,
    ended: Condvar,
}

impl GroupSync {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns once a sync (`sync`, e.g. `fdatasync` of the bundle) that began after this call
    /// has ended; its error if it failed. Callers that arrive together share one.
    pub fn sync(&self, sync: impl Fn() -> io::Result<()>) -> io::Result<()> {
        let mut st = self.lock();
        // The one running now may have begun before the caller's last write: not enough.
        let need = st.started + 1;
        loop {
            if st.finished >= need {
                return match &st.failed {
                    Some((n, e)) if *n >= need => Err(io::Error::other(e.clone())),
                    _ => Ok(()),
                };
            }
            if st.running {
                st = self.ended.wait(st).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            st.running = true;
            st.started += 1;
            st.runs += 1;
            let number = st.started;
            drop(st);
            let result = sync();
            st = self.lock();
            st.running = false;
            st.finished = number;
            if let Err(e) = result {
                st.failed = Some((number, e.to_string()));
            }
            self.ended.notify_all();
        }
    }

    /// Syncs run so far.
    pub fn runs(&self) -> u64 {
        self.lock().runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    #[test]
    fn a_lone_caller_runs_its_own_sync() {
        let g = GroupSync::default();
        let calls = AtomicU64::new(0);
        for _ in 0..3 {
            g.sync(|| {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(g.runs(), 3);
    }

    #[test]
    fn callers_arriving_during_a_sync_share_the_next_one() {
        let g = Arc::new(GroupSync::default());
        let writes = Arc::new(AtomicU64::new(0));
        // What each sync made durable: the writes counted when it began.
        let durable = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (g, writes, durable) = (g.clone(), writes.clone(), durable.clone());
                std::thread::spawn(move || {
                    let mine = writes.fetch_add(1, Ordering::SeqCst) + 1;
                    g.sync(|| {
                        durable.fetch_max(writes.load(Ordering::SeqCst), Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        Ok(())
                    })
                    .unwrap();
                    // The guarantee: a sync that began after this caller's write has ended.
                    assert!(durable.load(Ordering::SeqCst) >= mine);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(g.runs() < 16, "{} syncs for 16 callers", g.runs());
    }

    #[test]
    fn a_failed_sync_fails_its_callers_and_the_next_one_recovers() {
        let g = GroupSync::default();
        let e = g
            .sync(|| Err(io::Error::other("disk on fire")))
            .unwrap_err();
        assert!(e.to_string().contains("disk on fire"));
        g.sync(|| Ok(())).expect("a later sync that succeeds");
    }
}
