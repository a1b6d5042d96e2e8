//! The one lock type of the crate: each shard of the memory store (and each stripe of a
//! [`Tiered`](crate::Tiered) store) is used through [`Lock::with`].
//!
//! With `std` it is a [`std::sync::Mutex`]; a panic while locked does not poison it (a
//! shard keeps its invariants between calls). Without `std` it is a
//! [`core::cell::RefCell`]: the same `&self` API, usable from one thread (the store is then
//! not `Sync`). No `unsafe`, no spinning — the same pattern as `sip-transaction`.

#[cfg(feature = "std")]
#[derive(Debug, Default)]
pub(crate) struct Lock<T>(std::sync::Mutex<T>);

#[cfg(feature = "std")]
impl<T> Lock<T> {
    pub(crate) fn new(v: T) -> Self {
        Lock(std::sync::Mutex::new(v))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }
}

#[cfg(not(feature = "std"))]
#[derive(Debug, Default)]
pub(crate) struct Lock<T>(core::cell::RefCell<T>);

#[cfg(not(feature = "std"))]
impl<T> Lock<T> {
    pub(crate) fn new(v: T) -> Self {
        Lock(core::cell::RefCell::new(v))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}
