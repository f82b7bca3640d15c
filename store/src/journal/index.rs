//! The live-record index: what every record on disk still means, and where it lives.
//!
//! Recovery and the writer drive the same [`Index`] with the same records in the same order, so
//! the index after a restart describes the disk exactly as the index before it did.
//!
//! ### Invariants
//! - A record on disk is *needed* when dropping it would change what recovery returns. Needed
//!   records are: the latest `QueueCreate` of a live queue, the `Add` of a live message (and its
//!   latest `DeliveryCount`), a pending `TxPrepare`, and *tombstones whose target still exists on
//!   disk*: an `Ack` whose `Add` sits in another segment that still exists, a `QueueDelete` while
//!   any segment holding one of the queue's creates (superseded ones included) or messages still
//!   exists, a `TxCommit`/`TxRollback`
//!   while the segment of its `TxPrepare` still exists.
//! - `SegInfo::live` counts the needed record units located in that segment; the effects of a
//!   committed transaction are located in the segment of its `TxPrepare`.
//! - A tombstone always lives in a later segment than its target (targets only move forward while
//!   live, tombstones of dead targets only move forward), so compacting the oldest segments first
//!   releases every dependency; there are no cycles.
//! - Records of a queue are keyed by id and applied order-insensitively with respect to its
//!   `QueueCreate` (an `Add` before the create of its queue attaches once the create appears), so
//!   compaction may move a `QueueCreate` after the queue's messages.

use super::{JournalRecord, QueueId};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Segment number.
pub(crate) type SegId = u64;

/// Accounting for one segment.
#[derive(Debug, Default)]
pub(crate) struct SegInfo {
    /// Record units written to the segment.
    pub total: u64,
    /// Record units still needed.
    pub live: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Acked messages whose `Add` is here while their `Ack` lives in another segment.
    dead_adds: Vec<(QueueId, u64)>,
    /// Deleted queues whose `QueueDelete` depends on this segment.
    queue_refs: Vec<QueueId>,
    /// Transactions whose `TxPrepare` was written here.
    txs: Vec<u64>,
}

/// One live message. Kept small (40 bytes): the index holds one per queued message, so a deep
/// queue's memory is mostly this (payloads held while recovering live in `Index::payloads`).
#[derive(Debug)]
pub(crate) struct Msg {
    pub add_seg: SegId,
    pub dc_seg: Option<SegId>,
    /// Segments still holding older copies of this `Add` (left by an interrupted compaction):
    /// its `Ack` must outlive them too. Almost always `None`; a boxed `Vec` (a thin pointer, 8
    /// bytes) rather than a boxed slice (16) keeps `Msg` at 40 bytes.
    #[allow(clippy::box_collection)]
    pub stale: Option<Box<Vec<SegId>>>,
    pub count: u32,
}

#[derive(Debug)]
pub(crate) struct Created {
    pub name: String,
    pub meta: Bytes,
    pub seg: SegId,
}

#[derive(Debug, Default)]
pub(crate) struct QueueIdx {
    /// `None` for a placeholder: messages seen before the queue's create.
    pub created: Option<Created>,
    pub messages: BTreeMap<u64, Msg>,
    /// Segments holding superseded `QueueCreate`s of this queue: a `QueueDelete` must outlive
    /// them too, or the old create would bring the queue back.
    pub stale_creates: Vec<SegId>,
}

#[derive(Debug)]
struct DeadAdd {
    /// Segments holding a copy of the acked `Add`.
    add_segs: Vec<SegId>,
    tomb_seg: SegId,
}

#[derive(Debug)]
struct DeadQueue {
    tomb_seg: SegId,
    deps: BTreeSet<SegId>,
}

#[derive(Debug)]
pub(crate) enum TxState {
    Pending {
        records: Vec<JournalRecord>,
        units: u64,
    },
    Resolved {
        resolve_seg: SegId,
    },
}

#[derive(Debug)]
pub(crate) struct TxIdx {
    pub prepare_seg: SegId,
    /// Offset in the prepare segment of the frame holding the `TxPrepare`.
    pub prepare_offset: u64,
    pub state: TxState,
}

/// A record kept by compaction, and how the index must follow it once it is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Move {
    Create(QueueId),
    Delete(QueueId),
    Add(QueueId, u64),
    Ack(QueueId, u64),
    Dc(QueueId, u64),
    Prepare(u64),
    Resolve(u64),
}

/// Where a needed committed `TxCommit` must fetch its transaction's effects from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Materialize {
    pub tx: u64,
    pub prepare_seg: SegId,
    pub prepare_offset: u64,
}

/// The index.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub segs: BTreeMap<SegId, SegInfo>,
    pub queues: HashMap<QueueId, QueueIdx>,
    deleted: HashSet<QueueId>,
    dead_adds: HashMap<(QueueId, u64), DeadAdd>,
    dead_queues: HashMap<QueueId, DeadQueue>,
    pub txs: HashMap<u64, TxIdx>,
    /// Keep payloads (recovery) or drop them (runtime).
    pub keep_payloads: bool,
    /// While recovering: payload bytes of live messages held at most; those past it are left
    /// on disk (absent from `payloads`). `None` = no bound (payloads are then slices of the segment
    /// buffers, no copy).
    pub payload_budget: Option<u64>,
    /// Payload bytes currently held (with a budget).
    held: u64,
    /// While recovering: the payloads held, by (queue, seq). A live message absent from it
    /// was past the budget and left on disk.
    payloads: HashMap<(QueueId, u64), Bytes>,
    pub max_queue: QueueId,
    pub max_seq: u64,
    pub max_tx: u64,
}

fn strip(records: &[JournalRecord]) -> Vec<JournalRecord> {
    records
        .iter()
        .map(|r| match r {
            JournalRecord::Add { queue, seq, .. } => JournalRecord::Add {
                queue: *queue,
                seq: *seq,
                payload: Bytes::new(),
            },
            other => other.clone(),
        })
        .collect()
}

impl Index {
    fn inc(&mut self, seg: SegId, n: u64) {
        self.segs.entry(seg).or_default().live += n;
    }

    fn dec(&mut self, seg: SegId, n: u64) {
        if let Some(s) = self.segs.get_mut(&seg) {
            s.live = s.live.saturating_sub(n);
        }
    }

    /// An empty index that keeps payloads (for recovery).
    pub fn recovering() -> Self {
        Index {
            keep_payloads: true,
            ..Index::default()
        }
    }

    fn note_ids(&mut self, r: &JournalRecord) {
        match r {
            JournalRecord::QueueCreate { queue, .. } | JournalRecord::QueueDelete { queue } => {
                self.max_queue = self.max_queue.max(*queue)
            }
            JournalRecord::Add { queue, seq, .. }
            | JournalRecord::Ack { queue, seq }
            | JournalRecord::DeliveryCount { queue, seq, .. } => {
                self.max_queue = self.max_queue.max(*queue);
                self.max_seq = self.max_seq.max(*seq);
            }
            JournalRecord::TxPrepare { tx, records } => {
                self.max_tx = self.max_tx.max(*tx);
                for r in records {
                    self.note_ids(r);
                }
            }
            JournalRecord::TxCommit { tx } | JournalRecord::TxRollback { tx } => {
                self.max_tx = self.max_tx.max(*tx)
            }
        }
    }

    /// Applies a batch written at `offset` of segment `seg`.
    pub fn apply_batch(&mut self, records: &[JournalRecord], seg: SegId, offset: u64) {
        let units: u64 = records.iter().map(super::format::units).sum();
        self.segs.entry(seg).or_default().total += units;
        for r in records {
            self.note_ids(r);
            self.apply(r, seg, offset);
        }
    }

    /// Applies one record located in `seg`.
    fn apply(&mut self, r: &JournalRecord, seg: SegId, offset: u64) {
        match r {
            JournalRecord::QueueCreate { queue, name, meta } => {
                if self.deleted.contains(queue) {
                    return;
                }
                let q = self.queues.entry(*queue).or_default();
                let old = q.created.replace(Created {
                    name: name.clone(),
                    meta: meta.clone(),
                    seg,
                });
                if let Some(old) = old {
                    if old.seg != seg && !q.stale_creates.contains(&old.seg) {
                        q.stale_creates.push(old.seg);
                    }
                    self.dec(old.seg, 1);
                }
                self.inc(seg, 1);
            }
            JournalRecord::QueueDelete { queue } => {
                if !self.deleted.insert(*queue) {
                    return;
                }
                let Some(q) = self.queues.remove(queue) else {
                    return;
                };
                let mut deps = BTreeSet::new();
                if let Some(c) = q.created {
                    self.dec(c.seg, 1);
                    deps.insert(c.seg);
                }
                for s in &q.stale_creates {
                    if self.segs.contains_key(s) {
                        deps.insert(*s);
                    }
                }
                for (seq, m) in &q.messages {
                    if let Some(p) = self.payloads.remove(&(*queue, *seq)) {
                        self.held = self.held.saturating_sub(p.len() as u64);
                    }
                    self.dec(m.add_seg, 1);
                    deps.insert(m.add_seg);
                    deps.extend(
                        m.stale
                            .iter()
                            .flat_map(|v| v.iter())
                            .filter(|s| self.segs.contains_key(s)),
                    );
                    if let Some(d) = m.dc_seg {
                        self.dec(d, 1);
                    }
                }
                deps.remove(&seg);
                if !deps.is_empty() {
                    for d in &deps {
                        self.segs.entry(*d).or_default().queue_refs.push(*queue);
                    }
                    self.dead_queues.insert(
                        *queue,
                        DeadQueue {
                            tomb_seg: seg,
                            deps,
                        },
                    );
                    self.inc(seg, 1);
                }
            }
            JournalRecord::Add {
                queue,
                seq,
                payload,
            } => {
                if self.deleted.contains(queue) {
                    return;
                }
                let key = (*queue, *seq);
                if let Some(p) = self.payloads.remove(&key) {
                    self.held = self.held.saturating_sub(p.len() as u64);
                }
                let held = match (self.keep_payloads, self.payload_budget) {
                    (false, _) => None,
                    (true, None) => Some(payload.clone()),
                    (true, Some(budget)) => {
                        if self.held + payload.len() as u64 <= budget {
                            self.held += payload.len() as u64;
                            // A copy: a slice would pin its whole segment buffer in memory.
                            Some(Bytes::copy_from_slice(payload))
                        } else {
                            None
                        }
                    }
                };
                if let Some(p) = held {
                    self.payloads.insert(key, p);
                }
                let q = self.queues.entry(*queue).or_default();
                // A second Add of a live key (a copy left by an interrupted compaction, which
                // rewrites the delivery count right after it) replaces the message.
                let old = q.messages.insert(
                    *seq,
                    Msg {
                        add_seg: seg,
                        count: 0,
                        dc_seg: None,
                        stale: None,
                    },
                );
                if let Some(old) = old {
                    let mut stale = old.stale.map(|v| *v).unwrap_or_default();
                    stale.push(old.add_seg);
                    stale.retain(|s| *s != seg && self.segs.contains_key(s));
                    stale.sort_unstable();
                    stale.dedup();
                    if let Some(m) = self
                        .queues
                        .get_mut(queue)
                        .and_then(|q| q.messages.get_mut(seq))
                    {
                        m.stale = (!stale.is_empty()).then(|| Box::new(stale));
                    }
                    self.dec(old.add_seg, 1);
                    if let Some(d) = old.dc_seg {
                        self.dec(d, 1);
                    }
                }
                self.inc(seg, 1);
            }
            JournalRecord::Ack { queue, seq } => {
                let Some(m) = self
                    .queues
                    .get_mut(queue)
                    .and_then(|q| q.messages.remove(seq))
                else {
                    return;
                };
                if let Some(p) = self.payloads.remove(&(*queue, *seq)) {
                    self.held = self.held.saturating_sub(p.len() as u64);
                }
                self.dec(m.add_seg, 1);
                if let Some(d) = m.dc_seg {
                    self.dec(d, 1);
                }
                let mut add_segs = m.stale.map(|v| *v).unwrap_or_default();
                add_segs.push(m.add_seg);
                add_segs.retain(|s| *s != seg && self.segs.contains_key(s));
                if !add_segs.is_empty() {
                    let key = (*queue, *seq);
                    for s in &add_segs {
                        self.segs.entry(*s).or_default().dead_adds.push(key);
                    }
                    if let Some(old) = self.dead_adds.insert(
                        key,
                        DeadAdd {
                            add_segs,
                            tomb_seg: seg,
                        },
                    ) {
                        // An earlier incarnation's ack: still needed while its add exists.
                        // Keep the newest entry; the old ack stays live only by its own count.
                        self.dec(old.tomb_seg, 1);
                    }
                    self.inc(seg, 1);
                }
            }
            JournalRecord::DeliveryCount { queue, seq, count } => {
                let Some(m) = self
                    .queues
                    .get_mut(queue)
                    .and_then(|q| q.messages.get_mut(seq))
                else {
                    return;
                };
                m.count = *count;
                let old = m.dc_seg.replace(seg);
                if let Some(d) = old {
                    self.dec(d, 1);
                }
                self.inc(seg, 1);
            }
            JournalRecord::TxPrepare { tx, records } => {
                self.forget_tx(*tx);
                let units = super::format::units(r);
                let records = if self.keep_payloads {
                    records.clone()
                } else {
                    strip(records)
                };
                self.txs.insert(
                    *tx,
                    TxIdx {
                        prepare_seg: seg,
                        prepare_offset: offset,
                        state: TxState::Pending { records, units },
                    },
                );
                let s = self.segs.entry(seg).or_default();
                s.txs.push(*tx);
                s.live += units;
            }
            JournalRecord::TxCommit { tx } | JournalRecord::TxRollback { tx } => {
                let commit = matches!(r, JournalRecord::TxCommit { .. });
                let Some(t) = self.txs.get_mut(tx) else {
                    return;
                };
                let prepare_seg = t.prepare_seg;
                let TxState::Pending { .. } = t.state else {
                    return;
                };
                let TxState::Pending { records, units } =
                    std::mem::replace(&mut t.state, TxState::Resolved { resolve_seg: seg })
                else {
                    return;
                };
                self.dec(prepare_seg, units);
                if prepare_seg != seg {
                    self.inc(seg, 1);
                }
                if commit {
                    for inner in &records {
                        self.apply(inner, prepare_seg, 0);
                    }
                }
            }
        }
    }

    /// Drops what the index knows about transaction `tx` (its id is being reused).
    fn forget_tx(&mut self, tx: u64) {
        if let Some(old) = self.txs.remove(&tx) {
            match old.state {
                TxState::Pending { units, .. } => self.dec(old.prepare_seg, units),
                TxState::Resolved { resolve_seg } => {
                    if resolve_seg != old.prepare_seg {
                        self.dec(resolve_seg, 1);
                    }
                }
            }
        }
    }

    /// End of recovery: drops placeholder queues (messages whose queue was never created) and
    /// switches to runtime mode. Returns the recovered queues and prepared transactions with
    /// their payloads.
    pub fn finish_recovery(&mut self) -> (Vec<super::RecoveredQueue>, Vec<super::PreparedTx>) {
        let placeholders: Vec<QueueId> = self
            .queues
            .iter()
            .filter(|(_, q)| q.created.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in placeholders {
            if let Some(q) = self.queues.remove(&id) {
                for (seq, m) in &q.messages {
                    self.payloads.remove(&(id, *seq));
                    self.dec(m.add_seg, 1);
                    if let Some(d) = m.dc_seg {
                        self.dec(d, 1);
                    }
                }
            }
        }
        let mut queues: Vec<super::RecoveredQueue> = Vec::with_capacity(self.queues.len());
        let payloads = &mut self.payloads;
        for (id, q) in self.queues.iter() {
            let Some(c) = &q.created else { continue };
            let messages = q
                .messages
                .iter()
                .map(|(seq, m)| {
                    let payload = payloads.remove(&(*id, *seq));
                    super::RecoveredMessage {
                        seq: *seq,
                        delivery_count: m.count,
                        on_disk: payload.is_none(),
                        payload: payload.unwrap_or_default(),
                    }
                })
                .collect();
            queues.push(super::RecoveredQueue {
                queue: *id,
                name: c.name.clone(),
                meta: c.meta.clone(),
                messages,
            });
        }
        queues.sort_by_key(|q| q.queue);
        let mut prepared = Vec::new();
        for (tx, t) in self.txs.iter_mut() {
            if let TxState::Pending { records, .. } = &mut t.state {
                prepared.push(super::PreparedTx {
                    tx: *tx,
                    records: records.clone(),
                });
                *records = strip(records);
            }
        }
        prepared.sort_by_key(|p| p.tx);
        self.keep_payloads = false;
        self.payloads = HashMap::new();
        self.held = 0;
        (queues, prepared)
    }

    /// Decides whether `r`, found in segment `from` (directly, or as the effect of a committed
    /// transaction prepared there), must be rewritten by compaction. Pushes what to write into
    /// `out` (with the index move to perform once written) and skips keys already in `seen`.
    /// Returns a transaction to materialize when `r` is a needed `TxCommit`.
    pub fn keep(
        &self,
        r: &JournalRecord,
        from: SegId,
        seen: &mut HashSet<Move>,
        out: &mut Vec<(JournalRecord, Move)>,
    ) -> Option<Materialize> {
        match r {
            JournalRecord::QueueCreate { queue, .. } => {
                let c = self.queues.get(queue).and_then(|q| q.created.as_ref())?;
                if c.seg == from && seen.insert(Move::Create(*queue)) {
                    out.push((
                        JournalRecord::QueueCreate {
                            queue: *queue,
                            name: c.name.clone(),
                            meta: c.meta.clone(),
                        },
                        Move::Create(*queue),
                    ));
                }
            }
            JournalRecord::QueueDelete { queue } => {
                if self
                    .dead_queues
                    .get(queue)
                    .is_some_and(|d| d.tomb_seg == from)
                    && seen.insert(Move::Delete(*queue))
                {
                    out.push((r.clone(), Move::Delete(*queue)));
                }
            }
            JournalRecord::Add { queue, seq, .. } => {
                let m = self.queues.get(queue).and_then(|q| q.messages.get(seq))?;
                if m.add_seg == from && seen.insert(Move::Add(*queue, *seq)) {
                    out.push((r.clone(), Move::Add(*queue, *seq)));
                    if m.dc_seg.is_some() {
                        seen.insert(Move::Dc(*queue, *seq));
                        out.push((
                            JournalRecord::DeliveryCount {
                                queue: *queue,
                                seq: *seq,
                                count: m.count,
                            },
                            Move::Dc(*queue, *seq),
                        ));
                    }
                }
            }
            JournalRecord::Ack { queue, seq } => {
                let key = (*queue, *seq);
                let live_again = self
                    .queues
                    .get(queue)
                    .is_some_and(|q| q.messages.contains_key(seq));
                if !live_again
                    && self.dead_adds.get(&key).is_some_and(|d| d.tomb_seg == from)
                    && seen.insert(Move::Ack(*queue, *seq))
                {
                    out.push((r.clone(), Move::Ack(*queue, *seq)));
                }
            }
            JournalRecord::DeliveryCount { queue, seq, .. } => {
                let m = self.queues.get(queue).and_then(|q| q.messages.get(seq))?;
                if m.dc_seg == Some(from)
                    && m.add_seg != from
                    && seen.insert(Move::Dc(*queue, *seq))
                {
                    out.push((
                        JournalRecord::DeliveryCount {
                            queue: *queue,
                            seq: *seq,
                            count: m.count,
                        },
                        Move::Dc(*queue, *seq),
                    ));
                }
            }
            JournalRecord::TxPrepare { tx, records } => {
                let t = self.txs.get(tx)?;
                if t.prepare_seg != from {
                    return None;
                }
                match t.state {
                    TxState::Pending { .. } => {
                        if seen.insert(Move::Prepare(*tx)) {
                            out.push((r.clone(), Move::Prepare(*tx)));
                        }
                    }
                    TxState::Resolved { .. } => {
                        // Effects of a committed transaction live here: keep the needed ones as
                        // plain records (the index is authoritative, so rolled-back records
                        // never match).
                        for inner in records {
                            self.keep(inner, from, seen, out);
                        }
                    }
                }
            }
            JournalRecord::TxCommit { tx } | JournalRecord::TxRollback { tx } => {
                let t = self.txs.get(tx)?;
                let TxState::Resolved { resolve_seg } = t.state else {
                    return None;
                };
                if resolve_seg != from
                    || t.prepare_seg == from
                    || !self.segs.contains_key(&t.prepare_seg)
                    || !seen.insert(Move::Resolve(*tx))
                {
                    return None;
                }
                if matches!(r, JournalRecord::TxCommit { .. }) {
                    // Re-appending the commit would apply the transaction at a later position,
                    // after records that may have acked its messages. Instead its live effects
                    // are rewritten as plain records and a rollback marker retires the prepare.
                    return Some(Materialize {
                        tx: *tx,
                        prepare_seg: t.prepare_seg,
                        prepare_offset: t.prepare_offset,
                    });
                }
                out.push((JournalRecord::TxRollback { tx: *tx }, Move::Resolve(*tx)));
            }
        }
        None
    }

    /// Follows a record rewritten by compaction from `from` into segment `to` at `offset`.
    pub fn moved(&mut self, mv: Move, to: SegId, offset: u64) {
        self.segs.entry(to).or_default();
        match mv {
            Move::Create(q) => {
                if let Some(c) = self.queues.get_mut(&q).and_then(|q| q.created.as_mut()) {
                    let from = std::mem::replace(&mut c.seg, to);
                    self.dec(from, 1);
                    self.inc(to, 1);
                }
            }
            Move::Delete(q) => {
                if let Some(d) = self.dead_queues.get_mut(&q) {
                    let from = std::mem::replace(&mut d.tomb_seg, to);
                    self.dec(from, 1);
                    self.inc(to, 1);
                }
            }
            Move::Add(q, seq) => {
                if let Some(m) = self
                    .queues
                    .get_mut(&q)
                    .and_then(|q| q.messages.get_mut(&seq))
                {
                    let from = std::mem::replace(&mut m.add_seg, to);
                    self.dec(from, 1);
                    self.inc(to, 1);
                }
            }
            Move::Ack(q, seq) => {
                if let Some(d) = self.dead_adds.get_mut(&(q, seq)) {
                    let from = std::mem::replace(&mut d.tomb_seg, to);
                    self.dec(from, 1);
                    self.inc(to, 1);
                }
            }
            Move::Dc(q, seq) => {
                if let Some(m) = self
                    .queues
                    .get_mut(&q)
                    .and_then(|q| q.messages.get_mut(&seq))
                {
                    let from = m.dc_seg.replace(to);
                    if let Some(from) = from {
                        self.dec(from, 1);
                    }
                    self.inc(to, 1);
                }
            }
            Move::Prepare(tx) => {
                if let Some(t) = self.txs.get_mut(&tx) {
                    let from = std::mem::replace(&mut t.prepare_seg, to);
                    t.prepare_offset = offset;
                    if let TxState::Pending { units, .. } = t.state {
                        self.dec(from, units);
                        self.inc(to, units);
                    }
                    self.segs.entry(to).or_default().txs.push(tx);
                }
            }
            Move::Resolve(tx) => {
                if let Some(t) = self.txs.get_mut(&tx) {
                    if let TxState::Resolved { resolve_seg } = &mut t.state {
                        let from = std::mem::replace(resolve_seg, to);
                        let prepare_seg = t.prepare_seg;
                        if from != prepare_seg {
                            self.dec(from, 1);
                        }
                        if to != prepare_seg {
                            self.inc(to, 1);
                        }
                    }
                }
            }
        }
    }

    /// Forgets a deleted segment and releases the tombstones that depended on it.
    pub fn remove_segment(&mut self, seg: SegId) {
        let Some(info) = self.segs.remove(&seg) else {
            return;
        };
        for key in info.dead_adds {
            let mut release = None;
            if let Some(d) = self.dead_adds.get_mut(&key) {
                d.add_segs.retain(|s| *s != seg);
                if d.add_segs.is_empty() {
                    release = Some(d.tomb_seg);
                }
            }
            if let Some(tomb) = release {
                self.dead_adds.remove(&key);
                self.dec(tomb, 1);
            }
        }
        for q in info.queue_refs {
            let mut release = None;
            if let Some(d) = self.dead_queues.get_mut(&q) {
                d.deps.remove(&seg);
                if d.deps.is_empty() {
                    release = Some(d.tomb_seg);
                }
            }
            if let Some(tomb) = release {
                self.dead_queues.remove(&q);
                self.dec(tomb, 1);
            }
        }
        for tx in info.txs {
            if self.txs.get(&tx).is_some_and(|t| t.prepare_seg == seg) {
                if let Some(t) = self.txs.remove(&tx) {
                    if let TxState::Resolved { resolve_seg } = t.state {
                        if resolve_seg != seg {
                            self.dec(resolve_seg, 1);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod size_tests {
    /// The index holds one `Msg` per queued message: its size is what a deep queue costs.
    #[test]
    fn msg_stays_small() {
        assert!(std::mem::size_of::<super::Msg>() <= 40);
    }
}
