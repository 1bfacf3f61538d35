//! Watch mode: file events mark conversations dirty, so a fresh answer costs a refresh of those
//! conversations instead of a sweep of the whole archive.
//!
//! Freshness holds as in sweep mode, with no round trip: Linux queues an inotify event within
//! the system call that makes the change, so every change completed before a request is in the
//! queue when the request starts. A request reads the queue dry, without blocking, then
//! refreshes what it marked. A thread reads the queue too whenever events arrive, so it does not
//! overflow while nobody asks; both read only while holding the same lock, so no event is ever
//! read but not yet marked.

#[cfg(any(target_os = "linux", target_os = "android"))]
mod inotify;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use linux::Watch;

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub use elsewhere::Watch;

/// Other systems sweep on every request: watch mode is built on inotify's guarantee above. (One
/// for macOS would need its own design on FSEvents, which cannot be tested here.)
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod elsewhere {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::error::{Error, Result};
    use crate::refresh::Stats;
    use crate::Index;

    /// Never made: `start` fails.
    pub struct Watch(std::convert::Infallible);

    impl Watch {
        pub fn start(index: Arc<Index>, _safety_sweep: Duration) -> Result<Watch> {
            let unsupported = std::io::Error::new(std::io::ErrorKind::Unsupported, "watch mode needs Linux's inotify");
            Err(Error::Io { path: index.logs().into(), source: unsupported })
        }

        pub fn start_waiting(index: Arc<Index>, safety_sweep: Duration, _setup_wait: Duration) -> Result<Watch> {
            Self::start(index, safety_sweep)
        }

        pub fn wait_watching(&self, _timeout: Duration) -> bool {
            match self.0 {}
        }

        pub fn freshen(&self, _index: &Index) -> Result<Option<Arc<Stats>>> {
            match self.0 {}
        }
    }
}
