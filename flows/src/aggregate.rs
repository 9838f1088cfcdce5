//! The live state: records summed into the open window, closed windows
//! folded into per-key and per-pair state, signatures read from that state.
//!
//! Per record: one endpoint lookup each side, one key lookup, a few
//! additions, O(1). Per closed window: one pass over the keys that were
//! active in it (not over every key ever seen), each updating its pair and
//! label-pair signatures in O(1) plus an occasional bounded periodicity refit.
//!
//! The caller owns the clock: records carry their own timestamps and
//! [`Aggregator::close_window`] takes `now`. Records older than the open
//! window (a poll that arrives after its window was closed) are counted in
//! the open window and reported by [`Aggregator::late_records`]; imports,
//! whose records come in any order, go through [`crate::WindowBatch`] and
//! the store instead, so each lands in its own window.

use std::collections::HashMap;

use foldhash::fast::RandomState as FastState;

use crate::endpoints::{EXTERNAL_LABEL, Endpoints, LabelId};
use crate::periodicity::{OnsetRing, TOLERANCE};
use crate::record::{FlowRecord, Protocol};
use crate::signature::{
    DeniedSummary, Periodicity, ServiceSummary, Signature, SignatureKind, TopPair, TopService,
    VolumeSummary,
};
use crate::sketch::VolumeSketch;
use crate::window::{Accumulator, EndpointId, FlowKey, Observation, WindowConfig, WindowRow};

const SECS_PER_DAY: i64 = 86_400;

/// What is kept per flow key. Fixed size, no heap: the memory per tracked key
/// is this plus the key's slot in the index (see [`Aggregator::memory`]).
#[derive(Debug, Clone, Copy)]
struct KeyState {
    key: FlowKey,
    /// Index of the pair signature.
    pair: u32,
    /// First observation, Unix seconds; the base of `onsets`.
    first_seen: i64,
    /// Last allowed observation; `i64::MIN` before one.
    last_allowed: i64,
    /// Last window with a denied attempt; `i64::MIN` before one.
    last_denied: i64,
    active_windows: u32,
    connections: u32,
    bytes: u64,
    packets: u64,
    denied: u32,
    onsets: OnsetRing,
    /// The open window's sums.
    open: Accumulator,
}

impl KeyState {
    fn activity(&self) -> KeyActivity {
        let known = |t: i64| (t != i64::MIN).then_some(t);
        KeyActivity {
            key: self.key,
            first_seen: self.first_seen,
            last_allowed: known(self.last_allowed),
            last_denied: known(self.last_denied),
            active_windows: self.active_windows,
            onsets: u32::try_from(self.onsets.len()).unwrap_or(u32::MAX),
            connections: self.connections,
            bytes: self.bytes,
            packets: self.packets,
            denied: self.denied,
        }
    }
}

/// What the live state knows of one flow key: the predictor's raw evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KeyActivity {
    /// The key.
    pub key: FlowKey,
    /// First observation (allowed or denied), Unix seconds.
    pub first_seen: i64,
    /// Last allowed traffic, Unix seconds.
    pub last_allowed: Option<i64>,
    /// Last denied attempt, Unix seconds (to the second within its window).
    pub last_denied: Option<i64>,
    /// Windows with allowed traffic.
    pub active_windows: u32,
    /// Onsets kept (bursts of attempts, allowed or denied, after a quiet
    /// gap), at most the ring's size.
    pub onsets: u32,
    /// Connections seen allowed.
    pub connections: u32,
    /// Allowed bytes.
    pub bytes: u64,
    /// Allowed packets.
    pub packets: u64,
    /// Denied attempts.
    pub denied: u32,
}

impl KeyActivity {
    /// Whether the key's allowed connections carried anything: on average
    /// more than `empty_bytes` each (IP-level bytes: a SYN answered by a
    /// reset is about 100), or for protocols without handshakes, a reply
    /// (more than one packet each). Probes and unanswered datagrams do not,
    /// so they are no evidence that a service is used.
    pub fn carried_payload(&self, empty_bytes: u64) -> bool {
        let connections = u64::from(self.connections.max(1));
        if self.last_allowed.is_none() || self.bytes == 0 {
            return false;
        }
        if self.key.protocol == crate::Protocol::TCP {
            self.bytes / connections > empty_bytes
        } else {
            self.packets == 0 || self.packets / connections > 1
        }
    }
}

/// The incremental state of one signature.
#[derive(Debug, Clone)]
struct SigState {
    first_seen: i64,
    last_seen: i64,
    active_windows: u64,
    /// Start of the last window counted as active, and how many active
    /// windows its row brought (a rollup row brings several).
    last_active_start: i64,
    last_active_count: u32,
    /// Bytes of the window being summed over the pair's keys; pushed into
    /// `volume` once a later window arrives.
    pending_start: i64,
    pending_bytes: u64,
    pending_windows: u32,
    volume: VolumeSketch,
    total_bytes: u64,
    hours: [u32; 24],
    weekdays: [u32; 7],
    services: Vec<ServiceState>,
    denied: u64,
    /// Denied attempts per day, ring indexed by day number mod 8.
    denied_days: [u32; 8],
    denied_latest_day: i64,
}

#[derive(Debug, Clone, Copy)]
struct ServiceState {
    protocol: Protocol,
    port: u16,
    /// The flow key behind it, for pair signatures (one key per service).
    key: Option<u32>,
    active_windows: u64,
    last_active_start: i64,
    bytes: u64,
    packets: u64,
    connections: u64,
    denied: u64,
    first_seen: i64,
    last_seen: i64,
}

impl SigState {
    fn new(start: i64) -> SigState {
        SigState {
            first_seen: start,
            last_seen: start,
            active_windows: 0,
            last_active_start: i64::MIN,
            last_active_count: 0,
            pending_start: i64::MIN,
            pending_bytes: 0,
            pending_windows: 0,
            volume: VolumeSketch::new(),
            total_bytes: 0,
            hours: [0; 24],
            weekdays: [0; 7],
            services: Vec::new(),
            denied: 0,
            denied_days: [0; 8],
            denied_latest_day: i64::MIN,
        }
    }

    fn flush_pending(&mut self) {
        if self.pending_windows > 0 {
            let per_window = self.pending_bytes / u64::from(self.pending_windows);
            self.volume
                .insert_n(per_window, u64::from(self.pending_windows));
        }
        self.pending_bytes = 0;
        self.pending_windows = 0;
    }

    /// Folds in one key's row. Rows must come in time order.
    fn apply(&mut self, row: &WindowRow, key_index: Option<u32>, first: i64, last: i64) {
        self.first_seen = self.first_seen.min(first);
        self.last_seen = self.last_seen.max(last);
        if row.active_windows > 0 {
            if row.start_s != self.pending_start {
                self.flush_pending();
                self.pending_start = row.start_s;
            }
            self.pending_bytes = self.pending_bytes.saturating_add(row.bytes);
            self.pending_windows = self.pending_windows.max(row.active_windows);
            self.total_bytes = self.total_bytes.saturating_add(row.bytes);
            // Several keys of the pair in one window are one active window;
            // for a rollup span, the busiest key's count stands for the pair.
            let added = if row.start_s > self.last_active_start {
                self.last_active_start = row.start_s;
                self.last_active_count = row.active_windows;
                row.active_windows
            } else if row.start_s == self.last_active_start
                && row.active_windows > self.last_active_count
            {
                let extra = row.active_windows - self.last_active_count;
                self.last_active_count = row.active_windows;
                extra
            } else {
                0
            };
            if added > 0 {
                self.active_windows = self.active_windows.saturating_add(u64::from(added));
                let hour = (row.start_s.rem_euclid(SECS_PER_DAY) / 3600) as usize;
                let weekday = weekday(row.start_s);
                if let Some(h) = self.hours.get_mut(hour) {
                    *h = h.saturating_add(added);
                }
                if let Some(d) = self.weekdays.get_mut(weekday) {
                    *d = d.saturating_add(added);
                }
            }
        }
        if row.denied > 0 {
            self.denied = self.denied.saturating_add(u64::from(row.denied));
            let day = row.start_s.div_euclid(SECS_PER_DAY);
            if day > self.denied_latest_day {
                let stale = day.saturating_sub(self.denied_latest_day).min(8);
                for d in 0..stale {
                    let slot = (day - d).rem_euclid(8) as usize;
                    if let Some(v) = self.denied_days.get_mut(slot) {
                        *v = 0;
                    }
                }
                self.denied_latest_day = day;
            }
            if day > self.denied_latest_day - 8 {
                let slot = day.rem_euclid(8) as usize;
                if let Some(v) = self.denied_days.get_mut(slot) {
                    *v = v.saturating_add(row.denied);
                }
            }
        }
        let protocol = row.key.protocol;
        let port = row.key.service_port;
        let index = match self
            .services
            .iter()
            .position(|s| s.protocol == protocol && s.port == port)
        {
            Some(i) => i,
            None => {
                self.services.push(ServiceState {
                    protocol,
                    port,
                    key: key_index,
                    active_windows: 0,
                    last_active_start: i64::MIN,
                    bytes: 0,
                    packets: 0,
                    connections: 0,
                    denied: 0,
                    first_seen: first,
                    last_seen: last,
                });
                self.services.len() - 1
            }
        };
        if let Some(service) = self.services.get_mut(index) {
            service.first_seen = service.first_seen.min(first);
            service.last_seen = service.last_seen.max(last);
            service.bytes = service.bytes.saturating_add(row.bytes);
            service.packets = service.packets.saturating_add(row.packets);
            service.connections = service
                .connections
                .saturating_add(u64::from(row.connections));
            service.denied = service.denied.saturating_add(u64::from(row.denied));
            if row.active_windows > 0 && row.start_s > service.last_active_start {
                service.last_active_start = row.start_s;
                service.active_windows = service
                    .active_windows
                    .saturating_add(u64::from(row.active_windows));
            }
        }
    }

    /// Denied attempts on the seven complete days before `today`.
    fn denied_week(&self, today: i64) -> [u32; 7] {
        let mut week = [0; 7];
        for (i, slot) in week.iter_mut().enumerate() {
            let day = today - 7 + i as i64;
            if day <= self.denied_latest_day && day > self.denied_latest_day - 8 {
                *slot = self
                    .denied_days
                    .get(day.rem_euclid(8) as usize)
                    .copied()
                    .unwrap_or(0);
            }
        }
        week
    }

    fn heap_bytes(&self) -> usize {
        self.volume.heap_bytes() + self.services.capacity() * size_of::<ServiceState>()
    }
}

/// Monday = 0; 1970-01-01 was a Thursday.
fn weekday(secs: i64) -> usize {
    (secs.div_euclid(SECS_PER_DAY) + 3).rem_euclid(7) as usize
}

/// Memory held by the live state, as [`Aggregator::memory`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MemoryReport {
    /// Flow keys tracked.
    pub keys: usize,
    /// Bytes of per-key state (the state vector and the key index).
    pub key_bytes: usize,
    /// Bytes of the keys active in the open window list.
    pub open_window_bytes: usize,
    /// Pair and label-pair signatures.
    pub signatures: usize,
    /// Bytes of signature state.
    pub signature_bytes: usize,
    /// Bytes of the endpoint and label tables.
    pub endpoint_bytes: usize,
}

impl MemoryReport {
    /// Per-key state divided by keys: the figure the 256-byte budget is
    /// about.
    pub fn bytes_per_key(&self) -> f64 {
        if self.keys == 0 {
            return 0.0;
        }
        (self.key_bytes + self.open_window_bytes) as f64 / self.keys as f64
    }
}

/// Records in, signatures out.
#[derive(Debug, Default)]
pub struct Aggregator {
    config: WindowConfig,
    endpoints: Endpoints,
    // Keys are our own small indices, hashed with a per-process random
    // seed: foldhash is safe here and several times faster than SipHash
    // on the per-record and per-candidate lookups.
    index: HashMap<FlowKey, u32, FastState>,
    keys: Vec<KeyState>,
    pair_index: HashMap<(EndpointId, EndpointId), u32, FastState>,
    pairs: Vec<((EndpointId, EndpointId), SigState)>,
    label_index: HashMap<(LabelId, LabelId), u32, FastState>,
    label_pairs: Vec<((LabelId, LabelId), SigState)>,
    /// Start of the open window, if one is open.
    open_start: Option<i64>,
    /// Keys with traffic in the open window.
    touched: Vec<u32>,
    /// Rows of closed windows not yet taken by the store.
    closed: Vec<WindowRow>,
    /// Everything before this instant (Unix seconds) is closed.
    closed_until: i64,
    late_records: u64,
    keep_closed: bool,
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new(config: WindowConfig) -> Aggregator {
        Aggregator {
            config,
            closed_until: i64::MIN,
            keep_closed: true,
            ..Aggregator::default()
        }
    }

    /// The windowing settings.
    pub fn config(&self) -> WindowConfig {
        self.config
    }

    /// The endpoint and label tables.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The endpoint and label tables, to add endpoints or set labels.
    pub fn endpoints_mut(&mut self) -> &mut Endpoints {
        &mut self.endpoints
    }

    /// The key a record is summed under (adding its endpoints if new).
    pub fn key_of(&mut self, record: &FlowRecord) -> FlowKey {
        FlowKey {
            src: self.endpoints.intern(&record.src),
            dst: self.endpoints.intern(&record.dst),
            protocol: record.protocol,
            service_port: record.service_port(),
        }
    }

    /// Adds oriented records (see [`FlowRecord::oriented`]). A record after
    /// the open window closes it first; its rows wait in
    /// [`Aggregator::take_closed`].
    pub fn ingest(&mut self, records: &[FlowRecord]) {
        for record in records {
            let key = self.key_of(record);
            let obs = Observation {
                ts: record.ts,
                bytes: record.bytes,
                packets: record.packets,
                connections: record.connections,
                verdict: record.verdict,
            };
            self.add(key, &obs);
        }
    }

    /// Adds one observation of a key whose endpoints are already interned.
    pub fn add(&mut self, key: FlowKey, obs: &Observation) {
        let secs = obs.ts.secs();
        let start = self.config.window_start(secs);
        let open = match self.open_start {
            Some(open) if start > open => {
                self.close_open_window();
                self.open_window(start)
            }
            Some(open) => open,
            None => self.open_window(start),
        };
        if secs < open {
            self.late_records = self.late_records.saturating_add(1);
        }
        let max_offset = self.config.length_s.saturating_sub(1);
        let offset = u16::try_from(secs.saturating_sub(open).max(0))
            .unwrap_or(u16::MAX)
            .min(max_offset);
        let index = self.key_index(key, secs);
        if let Some(state) = self.keys.get_mut(index as usize) {
            if !state.open.touched {
                self.touched.push(index);
            }
            state.open.add(offset, obs);
        }
    }

    fn open_window(&mut self, start: i64) -> i64 {
        // A window that already closed is not reopened: its late records go
        // to the first window still open.
        let start = start.max(self.closed_until);
        self.open_start = Some(start);
        start
    }

    fn key_index(&mut self, key: FlowKey, secs: i64) -> u32 {
        if let Some(&index) = self.index.get(&key) {
            return index;
        }
        let pair = self.pair_slot((key.src, key.dst), secs);
        let index = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        if self.keys.len() == self.keys.capacity() {
            // Grow by an eighth rather than double: still amortised O(1),
            // but the slack stays under 12.5 % of a state that is most of
            // the per-key memory.
            self.keys.reserve_exact((self.keys.len() / 8).max(1024));
        }
        self.keys.push(KeyState {
            key,
            pair,
            first_seen: secs,
            last_allowed: i64::MIN,
            last_denied: i64::MIN,
            active_windows: 0,
            connections: 0,
            bytes: 0,
            packets: 0,
            denied: 0,
            onsets: OnsetRing::default(),
            open: Accumulator::default(),
        });
        self.index.insert(key, index);
        index
    }

    fn pair_slot(&mut self, pair: (EndpointId, EndpointId), secs: i64) -> u32 {
        if let Some(&slot) = self.pair_index.get(&pair) {
            return slot;
        }
        let slot = u32::try_from(self.pairs.len()).unwrap_or(u32::MAX);
        self.pairs.push((pair, SigState::new(secs)));
        self.pair_index.insert(pair, slot);
        slot
    }

    fn label_slot(&mut self, pair: (LabelId, LabelId), secs: i64) -> usize {
        if let Some(&slot) = self.label_index.get(&pair) {
            return slot as usize;
        }
        let slot = self.label_pairs.len();
        self.label_pairs.push((pair, SigState::new(secs)));
        self.label_index
            .insert(pair, u32::try_from(slot).unwrap_or(u32::MAX));
        slot
    }

    /// Closes every window that ends at or before `now` (Unix seconds) and
    /// moves the clock there. The closed rows wait in
    /// [`Aggregator::take_closed`]; signatures already include them.
    pub fn close_window(&mut self, now_s: i64) {
        if let Some(open) = self.open_start
            && open.saturating_add(i64::from(self.config.length_s)) <= now_s
        {
            self.close_open_window();
        }
        let boundary = self.config.window_start(now_s);
        if self.open_start.is_none() {
            self.closed_until = self.closed_until.max(boundary);
        }
    }

    fn close_open_window(&mut self) {
        let Some(start) = self.open_start.take() else {
            return;
        };
        let span = u32::from(self.config.length_s);
        let touched = std::mem::take(&mut self.touched);
        for &index in &touched {
            let row = match self.keys.get_mut(index as usize) {
                Some(state) => {
                    let row = state.open.to_row(state.key, start, span);
                    state.open = Accumulator::default();
                    row
                }
                None => continue,
            };
            self.fold_row(index, &row);
            if self.keep_closed {
                self.closed.push(row);
            }
        }
        self.touched = touched;
        self.touched.clear();
        self.closed_until = self
            .closed_until
            .max(start.saturating_add(i64::from(self.config.length_s)));
    }

    /// Whether closed rows are kept for [`Aggregator::take_closed`] (the
    /// default). A user without a store turns this off so they do not pile
    /// up.
    pub fn set_keep_closed(&mut self, keep: bool) {
        self.keep_closed = keep;
        if !keep {
            self.closed = Vec::new();
        }
    }

    /// Rows of windows closed since the last call, for the store.
    pub fn take_closed(&mut self) -> Vec<WindowRow> {
        std::mem::take(&mut self.closed)
    }

    /// Folds in stored rows (a rebuild after a restart, or rows an import
    /// wrote), which must come in time order and end before the open
    /// window. Moves the clock to the end of the last row.
    pub fn apply_rows(&mut self, rows: &[WindowRow]) {
        for row in rows {
            let first = row.start_s.saturating_add(i64::from(row.first_offset_s));
            let index = self.key_index(row.key, first);
            self.fold_row(index, row);
            self.closed_until = self
                .closed_until
                .max(row.start_s.saturating_add(i64::from(row.span_s)));
        }
    }

    /// Moves the clock to `now_s` without closing anything (after a rebuild,
    /// so that the active-window ratio counts the quiet time since).
    pub fn advance_clock(&mut self, now_s: i64) {
        let boundary = self.config.window_start(now_s);
        match self.open_start {
            Some(open) => self.closed_until = self.closed_until.max(boundary.min(open)),
            None => self.closed_until = self.closed_until.max(boundary),
        }
    }

    /// Everything before this instant is closed.
    pub fn closed_until(&self) -> i64 {
        self.closed_until
    }

    /// Records that arrived after their window had closed.
    pub fn late_records(&self) -> u64 {
        self.late_records
    }

    fn fold_row(&mut self, index: u32, row: &WindowRow) {
        let burst_gap = i64::from(self.config.burst_gap_s);
        let Some(state) = self.keys.get_mut(index as usize) else {
            return;
        };
        let active = row.active_windows > 0;
        let first = row.start_s.saturating_add(i64::from(row.first_offset_s));
        let last = row.start_s.saturating_add(i64::from(row.last_offset_s));
        let (first, last) = if active {
            (first, last)
        } else {
            (row.start_s, row.start_s)
        };
        state.first_seen = state.first_seen.min(first);
        let previous = state.last_allowed.max(state.last_denied);
        state.denied = state.denied.saturating_add(row.denied);
        if row.denied > 0 {
            let denied_at = row.start_s.saturating_add(i64::from(row.last_offset_s));
            state.last_denied = state.last_denied.max(denied_at);
        }
        // An onset is a burst of attempts whatever their verdict: a nightly
        // job that the policy denies still runs nightly, and its recurrence
        // is what says to open it before the next run.
        if active || row.denied > 0 {
            let onset = previous == i64::MIN || first.saturating_sub(previous) >= burst_gap;
            if onset {
                let offset = u32::try_from(first.saturating_sub(state.first_seen).max(0))
                    .unwrap_or(u32::MAX);
                state.onsets.push(state.first_seen, offset);
            }
        }
        if active {
            state.last_allowed = state.last_allowed.max(last);
            state.active_windows = state.active_windows.saturating_add(row.active_windows);
            state.connections = state.connections.saturating_add(row.connections);
            state.bytes = state.bytes.saturating_add(row.bytes);
            state.packets = state.packets.saturating_add(row.packets);
        }
        let pair_slot = state.pair as usize;
        let (src, dst) = (state.key.src, state.key.dst);
        if let Some((_, sig)) = self.pairs.get_mut(pair_slot) {
            sig.apply(row, Some(index), first, last);
        }
        let src_count = self.endpoints.labels_of(src).len();
        let dst_count = self.endpoints.labels_of(dst).len();
        for i in 0..src_count {
            for j in 0..dst_count {
                let (Some(&a), Some(&b)) = (
                    self.endpoints.labels_of(src).get(i),
                    self.endpoints.labels_of(dst).get(j),
                ) else {
                    continue;
                };
                let slot = self.label_slot((a, b), first);
                if let Some((_, sig)) = self.label_pairs.get_mut(slot) {
                    sig.apply(row, None, first, last);
                }
            }
        }
    }

    /// What is known of every tracked key, in the order keys were first
    /// seen. Reads the live state only: O(1) per key, no allocation.
    pub fn key_activity(&self) -> impl ExactSizeIterator<Item = KeyActivity> + '_ {
        self.keys.iter().map(KeyState::activity)
    }

    /// What is known of one key, if it is tracked.
    pub fn activity_of(&self, key: &FlowKey) -> Option<KeyActivity> {
        let &index = self.index.get(key)?;
        self.keys.get(index as usize).map(KeyState::activity)
    }

    /// The recurrence of one key, if its onsets fit a period (a bounded
    /// least-squares fit: call it for the keys that need it, not for all).
    pub fn periodicity_of(&self, key: &FlowKey) -> Option<Periodicity> {
        let &index = self.index.get(key)?;
        self.key_periodicity(index)
    }

    /// The recurrence of the key at `position` (in
    /// [`Aggregator::key_activity`]'s order): [`Aggregator::periodicity_of`]
    /// without a hash lookup.
    pub fn periodicity_at(&self, position: usize) -> Option<Periodicity> {
        self.key_periodicity(u32::try_from(position).ok()?)
    }

    /// Where a tracked key stands in [`Aggregator::key_activity`]'s order.
    pub fn position_of(&self, key: &FlowKey) -> Option<usize> {
        self.index.get(key).map(|&i| i as usize)
    }

    /// What is known of the key at `position` (in
    /// [`Aggregator::key_activity`]'s order): [`Aggregator::activity_of`]
    /// without a hash lookup, for a caller that already has the position.
    pub fn activity_at(&self, position: usize) -> Option<KeyActivity> {
        self.keys.get(position).map(KeyState::activity)
    }

    /// The activity profile of the pair of the key at `position` (in
    /// [`Aggregator::key_activity`]'s order): [`Aggregator::pair_profile`]
    /// without a hash lookup, for callers that walk the keys.
    pub fn pair_profile_at(&self, position: usize) -> Option<([u32; 24], [u32; 7])> {
        let state = self.keys.get(position)?;
        let (_, sig) = self.pairs.get(state.pair as usize)?;
        Some((sig.hours, sig.weekdays))
    }

    /// Where the pair of the key at `position` (in
    /// [`Aggregator::key_activity`]'s order) stands in
    /// [`Aggregator::pair_profiles`]' order. With it a caller that needs
    /// something of every pair computes it once per pair into a dense table
    /// and reads it per key without hashing.
    pub fn pair_slot_at(&self, position: usize) -> Option<usize> {
        self.keys.get(position).map(|state| state.pair as usize)
    }

    /// Where the pair `(src, dst)` stands in [`Aggregator::pair_profiles`]'
    /// order, if it ever talked.
    pub fn pair_slot_of(&self, src: EndpointId, dst: EndpointId) -> Option<usize> {
        self.pair_index.get(&(src, dst)).map(|&slot| slot as usize)
    }

    /// The hour-of-day and day-of-week profile of every pair (see
    /// [`Aggregator::pair_profile`]), in the order pairs were first seen:
    /// one sequential pass, where a lookup per key would be a random access
    /// each.
    pub fn pair_profiles(&self) -> impl ExactSizeIterator<Item = (&[u32; 24], &[u32; 7])> + '_ {
        self.pairs
            .iter()
            .map(|(_, sig)| (&sig.hours, &sig.weekdays))
    }

    /// The hour-of-day and day-of-week activity profile of a pair (active
    /// windows per UTC hour, per weekday from Monday).
    pub fn pair_profile(&self, src: EndpointId, dst: EndpointId) -> Option<([u32; 24], [u32; 7])> {
        let &slot = self.pair_index.get(&(src, dst))?;
        let (_, sig) = self.pairs.get(slot as usize)?;
        Some((sig.hours, sig.weekdays))
    }

    /// Flow keys tracked.
    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }

    /// Keys with traffic in the open window.
    pub fn open_keys(&self) -> usize {
        self.touched.len()
    }

    /// The signature of a pair, if it ever talked.
    pub fn pair_signature(&self, src: EndpointId, dst: EndpointId) -> Option<Signature> {
        let &slot = self.pair_index.get(&(src, dst))?;
        let ((src, dst), sig) = self.pairs.get(slot as usize)?;
        Some(self.view(
            SignatureKind::Pair,
            self.endpoint_name(*src),
            self.endpoint_name(*dst),
            sig,
            None,
        ))
    }

    /// The signature of a label pair (`"tier=web"`, `"tier=db"`).
    pub fn label_signature(&self, src: &str, dst: &str) -> Option<Signature> {
        let a = self.endpoints.get_label(src)?;
        let b = self.endpoints.get_label(dst)?;
        let &slot = self.label_index.get(&(a, b))?;
        let (_, sig) = self.label_pairs.get(slot as usize)?;
        Some(self.view(
            SignatureKind::LabelPair,
            src.to_owned(),
            dst.to_owned(),
            sig,
            Some((a, b)),
        ))
    }

    /// Every pair signature, in the order pairs were first seen.
    pub fn pair_signatures(&self) -> impl Iterator<Item = Signature> + '_ {
        self.pairs.iter().map(|((src, dst), sig)| {
            self.view(
                SignatureKind::Pair,
                self.endpoint_name(*src),
                self.endpoint_name(*dst),
                sig,
                None,
            )
        })
    }

    /// Every label-pair signature.
    pub fn label_signatures(&self) -> impl Iterator<Item = Signature> + '_ {
        self.label_pairs.iter().map(|((a, b), sig)| {
            self.view(
                SignatureKind::LabelPair,
                self.endpoints.label_text(*a).unwrap_or_default().to_owned(),
                self.endpoints.label_text(*b).unwrap_or_default().to_owned(),
                sig,
                Some((*a, *b)),
            )
        })
    }

    fn endpoint_name(&self, id: EndpointId) -> String {
        self.endpoints
            .endpoint(id)
            .map_or_else(|| format!("#{}", id.0), ToString::to_string)
    }

    fn view(
        &self,
        kind: SignatureKind,
        src: String,
        dst: String,
        sig: &SigState,
        labels: Option<(LabelId, LabelId)>,
    ) -> Signature {
        let mut volume = sig.volume.clone();
        if sig.pending_windows > 0 {
            let per_window = sig.pending_bytes / u64::from(sig.pending_windows);
            volume.insert_n(per_window, u64::from(sig.pending_windows));
        }
        let length = i64::from(self.config.length_s.max(1));
        let first_window = self.config.window_start(sig.first_seen);
        let observed_until = self.closed_until.max(
            self.config
                .window_start(sig.last_seen)
                .saturating_add(length),
        );
        let spanned = u64::try_from(observed_until.saturating_sub(first_window) / length)
            .unwrap_or(0)
            .max(sig.active_windows)
            .max(1);
        let mut services: Vec<ServiceSummary> = sig
            .services
            .iter()
            .map(|s| ServiceSummary {
                protocol: s.protocol,
                port: s.port,
                active_windows: s.active_windows,
                bytes: s.bytes,
                packets: s.packets,
                connections: s.connections,
                denied: s.denied,
                first_seen: s.first_seen,
                last_seen: s.last_seen,
                periodicity: match labels {
                    None => s.key.and_then(|k| self.key_periodicity(k)),
                    Some((a, b)) => self.label_periodicity(a, b, s.protocol, s.port),
                },
            })
            .collect();
        services.sort_by(|x, y| {
            y.bytes
                .cmp(&x.bytes)
                .then(y.connections.cmp(&x.connections))
                .then(y.denied.cmp(&x.denied))
                .then((x.protocol, x.port).cmp(&(y.protocol, y.port)))
        });
        let periodicity = services
            .iter()
            .filter_map(|s| s.periodicity)
            .max_by(|a, b| a.confidence.total_cmp(&b.confidence));
        let today = self.closed_until.div_euclid(SECS_PER_DAY);
        Signature {
            kind,
            src,
            dst,
            first_seen: sig.first_seen,
            last_seen: sig.last_seen,
            active_windows: sig.active_windows,
            windows_observed: spanned,
            active_window_ratio: sig.active_windows as f64 / spanned as f64,
            volume: VolumeSummary::from_sketch(&volume, sig.total_bytes),
            services,
            periodicity,
            hour_of_day: sig.hours,
            day_of_week: sig.weekdays,
            denied: DeniedSummary::from_days(sig.denied, sig.denied_week(today)),
        }
    }

    fn key_periodicity(&self, index: u32) -> Option<Periodicity> {
        let state = self.keys.get(index as usize)?;
        state.onsets.fit(state.first_seen).map(Periodicity::from)
    }

    /// For a label pair: the period most member keys of this service share,
    /// if at least half of them run at it.
    fn label_periodicity(
        &self,
        a: LabelId,
        b: LabelId,
        protocol: Protocol,
        port: u16,
    ) -> Option<Periodicity> {
        let mut members = 0u32;
        let mut periods: Vec<f64> = Vec::new();
        for state in &self.keys {
            if state.key.protocol != protocol
                || state.key.service_port != port
                || !self.endpoints.labels_of(state.key.src).contains(&a)
                || !self.endpoints.labels_of(state.key.dst).contains(&b)
                || state.active_windows == 0
            {
                continue;
            }
            members += 1;
            if let Some(fit) = state.onsets.fit(state.first_seen) {
                periods.push(fit.period_s);
            }
        }
        if periods.is_empty() {
            return None;
        }
        periods.sort_by(f64::total_cmp);
        let median = *periods.get(periods.len() / 2)?;
        let agreeing = periods
            .iter()
            .filter(|&&p| (p - median).abs() <= median * TOLERANCE)
            .count() as u32;
        (agreeing * 2 >= members).then(|| Periodicity {
            period_s: median,
            phase_s: None,
            next_expected_s: None,
            confidence: f64::from(agreeing) / f64::from(members.max(1)),
            cycles: agreeing,
        })
    }

    /// The `n` pairs with the most allowed bytes (then connections, then
    /// denied attempts).
    pub fn top_pairs(&self, n: usize) -> Vec<TopPair> {
        let mut all: Vec<TopPair> = self
            .pairs
            .iter()
            .map(|((src, dst), sig)| TopPair {
                src: self.endpoint_name(*src),
                dst: self.endpoint_name(*dst),
                bytes: sig.total_bytes,
                connections: sig.services.iter().map(|s| s.connections).sum(),
                active_windows: sig.active_windows,
                denied: sig.denied,
            })
            .collect();
        all.sort_by(|a, b| {
            (b.bytes, b.connections, b.denied)
                .cmp(&(a.bytes, a.connections, a.denied))
                .then((&a.src, &a.dst).cmp(&(&b.src, &b.dst)))
        });
        all.truncate(n);
        all
    }

    /// The `n` services with the most allowed bytes over all pairs.
    pub fn top_services(&self, n: usize) -> Vec<TopService> {
        let mut by_service: HashMap<(Protocol, u16), TopService> = HashMap::new();
        for state in &self.keys {
            let entry = by_service
                .entry((state.key.protocol, state.key.service_port))
                .or_insert(TopService {
                    protocol: state.key.protocol,
                    port: state.key.service_port,
                    bytes: 0,
                    connections: 0,
                    pairs: 0,
                    denied: 0,
                });
            entry.bytes = entry.bytes.saturating_add(state.bytes);
            entry.connections = entry
                .connections
                .saturating_add(u64::from(state.connections));
            entry.denied = entry.denied.saturating_add(u64::from(state.denied));
            entry.pairs += 1;
        }
        let mut all: Vec<TopService> = by_service.into_values().collect();
        all.sort_by(|a, b| {
            (b.bytes, b.connections, b.denied)
                .cmp(&(a.bytes, a.connections, a.denied))
                .then((a.protocol, a.port).cmp(&(b.protocol, b.port)))
        });
        all.truncate(n);
        all
    }

    /// What the live state holds, counted from the allocations' capacities:
    /// the key index is a hash table whose slots are the key, its u32
    /// position and one control byte, at the table's real bucket count.
    pub fn memory(&self) -> MemoryReport {
        let index_slot = size_of::<FlowKey>() + size_of::<u32>() + 1;
        // hashbrown keeps buckets at a power of two with at most 7/8 used.
        let buckets = (self.index.capacity() * 8 / 7).next_power_of_two();
        let key_bytes = self.keys.capacity() * size_of::<KeyState>() + buckets * index_slot;
        let pair_slot = size_of::<(EndpointId, EndpointId)>() + size_of::<u32>() + 1;
        let label_slot = size_of::<(LabelId, LabelId)>() + size_of::<u32>() + 1;
        let signature_bytes = self.pairs.capacity()
            * size_of::<((EndpointId, EndpointId), SigState)>()
            + self.label_pairs.capacity() * size_of::<((LabelId, LabelId), SigState)>()
            + self
                .pairs
                .iter()
                .map(|(_, s)| s.heap_bytes())
                .sum::<usize>()
            + self
                .label_pairs
                .iter()
                .map(|(_, s)| s.heap_bytes())
                .sum::<usize>()
            + (self.pair_index.capacity() * 8 / 7).next_power_of_two() * pair_slot
            + (self.label_index.capacity() * 8 / 7).next_power_of_two() * label_slot;
        MemoryReport {
            keys: self.keys.len(),
            key_bytes,
            open_window_bytes: self.touched.capacity() * size_of::<u32>(),
            signatures: self.pairs.len() + self.label_pairs.len(),
            signature_bytes,
            endpoint_bytes: self.endpoints.heap_bytes(),
        }
    }

    /// Bytes of one key's fixed state (without its index slot).
    pub const fn key_state_size() -> usize {
        size_of::<KeyState>()
    }

    /// Whether `label` names the pseudo-label of external addresses.
    pub fn is_external_label(label: &str) -> bool {
        label == EXTERNAL_LABEL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Endpoint, Timestamp};

    fn record(ts: i64, src: &str, dst: &str, dport: u16) -> FlowRecord {
        let (src, dst) = (Endpoint::vm(src), Endpoint::vm(dst));
        FlowRecord::tcp_connection(Timestamp::from_secs(ts), src, dst, dport, 5_000, 5)
    }

    #[test]
    fn by_position_and_by_slot_agree_with_lookups_by_key() {
        let mut agg = Aggregator::new(WindowConfig::default());
        agg.set_keep_closed(false);
        // Two keys of one pair, at different hours, and a second pair.
        let day = 1_704_067_200;
        agg.ingest(&[
            record(day + 3_600, "a", "b", 80),
            record(day + 7 * 3_600, "a", "b", 443),
            record(day + 9 * 3_600, "b", "c", 5432),
        ]);
        agg.close_window(day + 86_400);
        assert_eq!(agg.pair_profiles().len(), 2);
        for (position, activity) in agg.key_activity().enumerate() {
            let key = activity.key;
            assert_eq!(agg.position_of(&key), Some(position));
            assert_eq!(agg.activity_at(position), agg.activity_of(&key));
            assert_eq!(agg.periodicity_at(position), agg.periodicity_of(&key));
            let slot = agg.pair_slot_at(position).unwrap();
            assert_eq!(agg.pair_slot_of(key.src, key.dst), Some(slot));
            let (hours, days) = agg.pair_profiles().nth(slot).unwrap();
            assert_eq!(agg.pair_profile(key.src, key.dst), Some((*hours, *days)));
            assert_eq!(agg.pair_profile_at(position), Some((*hours, *days)));
        }
        let (hours, _) = agg.pair_profiles().next().unwrap();
        assert_eq!((hours[1], hours[7], hours[9]), (1, 1, 0));
        assert_eq!(agg.activity_at(3), None);
        assert_eq!(agg.pair_slot_at(3), None);
    }
}
