//! Requests held until something changes (long polls): a bounded list per stream. Who gets a
//! slot when it is full is a core rule ([`icc_core::waiters::admit`]).

use futures::channel::oneshot;
use icc_core::waiters::{admit, Admission};
use std::cell::{Cell, RefCell};

/// Why a held request wakes up before its time.
pub enum Wake {
    /// What it waits for happened: look again.
    Changed,
    /// Its slot went to a newer request: answer now, as if the time had passed.
    Released,
}

struct Waiter {
    id: u64,
    consumer: Option<String>,
    tx: oneshot::Sender<Wake>,
}

/// The held requests of one stream, oldest first.
#[derive(Default)]
pub struct Waiters {
    next_id: Cell<u64>,
    list: RefCell<Vec<Waiter>>,
}

impl Waiters {
    /// Wakes every held request.
    pub fn wake_all(&self) {
        for w in self.list.borrow_mut().drain(..) {
            let _ = w.tx.send(Wake::Changed);
        }
    }

    /// How many requests are still held (those that timed out are dropped first).
    pub fn waiting(&self) -> usize {
        let mut list = self.list.borrow_mut();
        list.retain(|w| !w.tx.is_canceled());
        list.len()
    }

    /// A slot for a request of `consumer` (`None`: a read by `after`), or `None` when `max`
    /// requests are held and none can be released (429).
    pub fn join(&self, consumer: Option<&str>, max: usize) -> Option<oneshot::Receiver<Wake>> {
        self.waiting();
        let mut list = self.list.borrow_mut();
        let current: Vec<(u64, Option<&str>)> =
            list.iter().map(|w| (w.id, w.consumer.as_deref())).collect();
        match admit(&current, consumer, max) {
            Admission::Admit => {}
            Admission::AdmitReleasing(id) => {
                if let Some(i) = list.iter().position(|w| w.id == id) {
                    let _ = list.remove(i).tx.send(Wake::Released);
                }
            }
            Admission::Refuse => return None,
        }
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let (tx, rx) = oneshot::channel();
        list.push(Waiter {
            id,
            consumer: consumer.map(str::to_owned),
            tx,
        });
        Some(rx)
    }
}
