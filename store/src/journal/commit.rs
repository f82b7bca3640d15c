//! The completion handle of an append: awaitable in any executor, or waited on from a thread.

use super::writer::{Request, Shared};
use crate::StoreError;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct SlotState {
    result: Option<Result<(), StoreError>>,
    done: bool,
    waker: Option<Waker>,
    /// A thread blocks in `wait`: only then is the condvar signalled (a futex syscall the
    /// writer would otherwise pay for every completion).
    blocked: bool,
}

/// One pending completion, shared by the writer thread and the [`Commit`].
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    cv: Condvar,
    /// When the append was made: the writer measures append-to-durable time from it.
    pub(crate) created: Instant,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            state: Mutex::default(),
            cv: Condvar::new(),
            created: Instant::now(),
        }
    }
}

impl Slot {
    /// Resolves the completion; later calls are ignored.
    pub(crate) fn complete(&self, result: Result<(), StoreError>) {
        let (waker, blocked) = {
            let mut s = lock(&self.state);
            if s.done {
                return;
            }
            s.done = true;
            s.result = Some(result);
            (s.waker.take(), s.blocked)
        };
        if blocked {
            self.cv.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Blocks until resolved.
    pub(crate) fn wait(&self) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        while !s.done {
            s.blocked = true;
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.result.take().unwrap_or(Err(StoreError::Closed))
    }
}

enum State {
    Ready(Option<Result<(), StoreError>>),
    /// `urge` is set for a lazy batch until its fsync has been asked for.
    Pending {
        slot: Arc<Slot>,
        urge: Option<Arc<Shared>>,
    },
}

/// Resolves once an appended batch is durable according to the journal's
/// [`SyncPolicy`](super::SyncPolicy): with `Always` after the `fdatasync` that covers it, with
/// `Interval` and `Never` once it is written to the file.
///
/// The batch is queued for writing when [`Journal::append`](super::Journal::append) returns, not
/// when the `Commit` is first polled, so dropping a `Commit` does not cancel the append. A `Commit`
/// needs no runtime to be created: await it in any executor, or call [`Commit::wait`] from a thread
/// that may block.
///
/// An `Err` means the outcome is unknown (the batch may or may not be recovered after a restart),
/// except for [`StoreError::Closed`] and [`StoreError::InvalidBatch`] returned before anything was
/// queued, which mean it was not written. Polling again after `Ready` yields `Err(Closed)`.
#[must_use = "a Commit tells when the batch is durable; drop it explicitly if that does not matter"]
pub struct Commit {
    state: State,
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Ready(_) => "ready",
            State::Pending { .. } => "pending",
        };
        f.debug_struct("Commit").field("state", &state).finish()
    }
}

impl Commit {
    pub(crate) fn ready(result: Result<(), StoreError>) -> Self {
        Commit {
            state: State::Ready(Some(result)),
        }
    }

    pub(crate) fn pending(slot: Arc<Slot>) -> Self {
        Commit {
            state: State::Pending { slot, urge: None },
        }
    }

    /// A lazy batch's commit: the first poll or wait asks the writer for its `fdatasync`.
    pub(crate) fn lazy(slot: Arc<Slot>, shared: Arc<Shared>) -> Self {
        Commit {
            state: State::Pending {
                slot,
                urge: Some(shared),
            },
        }
    }

    /// Blocks the calling thread until the batch is durable. Do not call it from an async task:
    /// await the `Commit` there instead.
    pub fn wait(mut self) -> Result<(), StoreError> {
        self.urge();
        match self.state {
            State::Ready(r) => r.unwrap_or(Err(StoreError::Closed)),
            State::Pending { slot, .. } => slot.wait(),
        }
    }

    /// True once the outcome is known (polling would return `Ready`).
    pub fn is_done(&self) -> bool {
        match &self.state {
            State::Ready(_) => true,
            State::Pending { slot, .. } => lock(&slot.state).done,
        }
    }

    /// Someone waits for this lazy batch: ask the writer to fsync now (once).
    fn urge(&mut self) {
        if let State::Pending { slot, urge } = &mut self.state {
            if let Some(shared) = urge.take() {
                if !lock(&slot.state).done {
                    shared.push_unless_closed(Request::Sync);
                }
            }
        }
    }
}

impl Future for Commit {
    type Output = Result<(), StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.urge();
        match &mut self.state {
            State::Ready(r) => Poll::Ready(r.take().unwrap_or(Err(StoreError::Closed))),
            State::Pending { slot, .. } => {
                let mut s = lock(&slot.state);
                if s.done {
                    return Poll::Ready(s.result.take().unwrap_or(Err(StoreError::Closed)));
                }
                match &s.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => s.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}
