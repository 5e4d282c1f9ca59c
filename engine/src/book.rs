//! The working orders of a session, kept sorted by acceptance sequence number.
//!
//! A sorted `Vec` rather than a map: sequence numbers only grow, so inserts append,
//! evaluation walks it in order, and a snapshot restores it without re-sorting. The
//! id index is derived data: it is not serialized, and after a restore it is rebuilt
//! only when first needed, which keeps restores cheap.

use std::cell::OnceCell;
use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::order::OpenOrder;

/// Working orders in acceptance order, with an index by client id.
#[derive(Clone, Debug, Default)]
pub struct OrderBook {
    orders: Vec<OpenOrder>,
    /// Client id -> sequence number; only looked up, never iterated.
    ids: OnceCell<HashMap<String, u64>>,
}

impl OrderBook {
    fn index(&self) -> &HashMap<String, u64> {
        self.ids
            .get_or_init(|| self.orders.iter().map(|o| (o.id.clone(), o.seq)).collect())
    }

    fn position(&self, seq: u64) -> Result<usize, usize> {
        self.orders.binary_search_by_key(&seq, |o| o.seq)
    }

    /// Adds an order; its sequence number must be larger than any already present.
    pub fn insert(&mut self, order: OpenOrder) {
        debug_assert!(self.orders.last().is_none_or(|o| o.seq < order.seq));
        if let Some(ids) = self.ids.get_mut() {
            ids.insert(order.id.clone(), order.seq);
        }
        self.orders.push(order);
    }

    /// The order with sequence number `seq`.
    pub fn get(&self, seq: u64) -> Option<&OpenOrder> {
        self.position(seq).ok().map(|i| &self.orders[i])
    }

    /// The order with sequence number `seq`, mutably (its id must not change).
    pub fn get_mut(&mut self, seq: u64) -> Option<&mut OpenOrder> {
        self.position(seq).ok().map(|i| &mut self.orders[i])
    }

    /// True when an order with this sequence number is working.
    pub fn contains(&self, seq: u64) -> bool {
        self.position(seq).is_ok()
    }

    /// Removes and returns the order with sequence number `seq`.
    pub fn remove(&mut self, seq: u64) -> Option<OpenOrder> {
        let i = self.position(seq).ok()?;
        let o = self.orders.remove(i);
        if let Some(ids) = self.ids.get_mut() {
            ids.remove(&o.id);
        }
        Some(o)
    }

    /// Sequence number of the working order with client id `id`.
    pub fn seq_of(&self, id: &str) -> Option<u64> {
        self.index().get(id).copied()
    }

    /// The first order with a sequence number >= `seq`.
    pub fn first_from(&self, seq: u64) -> Option<&OpenOrder> {
        let i = self.orders.partition_point(|o| o.seq < seq);
        self.orders.get(i)
    }

    /// Orders in acceptance order.
    pub fn iter(&self) -> std::slice::Iter<'_, OpenOrder> {
        self.orders.iter()
    }

    /// Number of working orders.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// True when no order is working.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// True when sequence numbers are strictly increasing (lookups rely on it).
    pub fn is_consistent(&self) -> bool {
        self.orders.windows(2).all(|w| w[0].seq < w[1].seq)
    }
}

impl Serialize for OrderBook {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.orders.serialize(s)
    }
}

impl<'de> Deserialize<'de> for OrderBook {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(OrderBook {
            orders: Vec::deserialize(d)?,
            ids: OnceCell::new(),
        })
    }
}
