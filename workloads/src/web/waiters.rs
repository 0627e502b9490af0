//! Clients of one pod waiting for something keyed (a queue number, a booking
//! outcome): the pod's hub looks all pending keys up in one batched store
//! read per tick and wakes whoever waits on the ones that resolved. Waiters
//! whose client went away are dropped before each lookup.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

/// Pending waits by key; cheap to clone (shared).
#[derive(Debug)]
pub struct Waiters<K, V>(Arc<Mutex<HashMap<K, Vec<oneshot::Sender<V>>>>>);

impl<K, V> Clone for Waiters<K, V> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K, V> Default for Waiters<K, V> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Waiters<K, V> {
    /// Resolves once `key` is resolved (never, if the hub never finds it).
    pub fn wait(&self, key: K) -> oneshot::Receiver<V> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.0.lock() {
            w.entry(key).or_default().push(tx);
        }
        rx
    }

    /// The keys someone still waits for (forgets abandoned waits).
    pub fn pending(&self) -> Vec<K> {
        let Ok(mut w) = self.0.lock() else {
            return Vec::new();
        };
        w.retain(|_, senders| {
            senders.retain(|s| !s.is_closed());
            !senders.is_empty()
        });
        w.keys().cloned().collect()
    }

    /// Wakes everyone waiting for `key` with `value`.
    pub fn resolve(&self, key: &K, value: V) {
        let senders = self
            .0
            .lock()
            .ok()
            .and_then(|mut w| w.remove(key))
            .unwrap_or_default();
        for sender in senders {
            let _ = sender.send(value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn resolves_waiters_and_forgets_abandoned_ones() {
        let w: Waiters<&str, u64> = Waiters::default();
        let a1 = w.wait("a");
        let a2 = w.wait("a");
        drop(w.wait("gone"));
        let mut pending = w.pending();
        pending.sort_unstable();
        assert_eq!(pending, vec!["a"]);
        w.resolve(&"a", 7);
        assert_eq!((a1.await.unwrap(), a2.await.unwrap()), (7, 7));
        assert!(w.pending().is_empty());
    }
}
