//! Who may hold a connection to `ferry serve`, and for how long ([`Table`]).
//!
//! A registry's clients are nodes that connect, ask, and go; its worst peers are port
//! scanners, broken nodes and attackers that connect and then say nothing, or say one byte,
//! or finish a TLS handshake and sit, or answer HTTP/2 pings forever. The table keeps two
//! kinds of slots apart, so that the second can never be starved by the first:
//!
//! - **pending**: accepted, but no request yet (TCP, the TLS handshake, the HTTP/2 preface,
//!   the first request's headers). At most `max_pending`; each must make its first request
//!   within `first_request`. When the pending slots are full, the oldest pending connection
//!   is closed to make room: a real client sends its request within milliseconds of
//!   connecting, so it is always among the newest, and a flood of silent sockets only ever
//!   evicts itself.
//! - **active**: has made a request. At most `max_active`. While no request is running on
//!   it, an active connection is idle; it is closed after `idle` without a request, whatever
//!   else it sends (HTTP/2 pings are not requests). When the active slots are full, the
//!   connection idle the longest is closed to make room (as nginx reuses keep-alive
//!   connections); only when every active connection is transferring is a new one turned
//!   away, with 503 and `Retry-After`.
//!
//! On top, no client address holds more than `per_client` connections of either kind: one
//! node cannot take the slots of all the others. A sweeper closes expired connections every
//! [`SWEEP`], and says when slots ran out at once, then at most once per [`REPORT_EVERY`]
//! (never once per connection).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// How often expired connections are looked for.
pub const SWEEP: Duration = Duration::from_millis(250);

/// How often running out of slots is reported, at most.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The limits of a [`Table`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections that have made a request (`--max-connections`).
    pub max_active: usize,
    /// Connections that have not made one yet (`--max-pending`).
    pub max_pending: usize,
    /// Connections of either kind per client address (`--max-connections-per-client`).
    pub per_client: usize,
    /// From accept to the first request's headers, TLS handshake included
    /// (`--first-request-timeout`).
    pub first_request: Duration,
    /// Without a running request, before an active connection is closed (`--idle-timeout`).
    pub idle: Duration,
}

/// One connection's entry.
struct Entry {
    client: IpAddr,
    /// Accepted at (pending), or idle since (active, no request running).
    since: Instant,
    running: usize,
    close: CancellationToken,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// By id, so the first is the oldest.
    pending: BTreeMap<u64, Entry>,
    active: HashMap<u64, Entry>,
    per_client: HashMap<IpAddr, usize>,
}

impl Inner {
    fn forget(&mut self, entry: &Entry) {
        if let Some(n) = self.per_client.get_mut(&entry.client) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&entry.client);
            }
        }
    }

    fn close_pending(&mut self, id: u64) {
        if let Some(e) = self.pending.remove(&id) {
            e.close.cancel();
            self.forget(&e);
        }
    }

    fn close_active(&mut self, id: u64) {
        if let Some(e) = self.active.remove(&id) {
            e.close.cancel();
            self.forget(&e);
        }
    }

    /// The active connection idle the longest.
    fn longest_idle(&self) -> Option<u64> {
        self.active
            .iter()
            .filter(|(_, e)| e.running == 0)
            .min_by_key(|(_, e)| e.since)
            .map(|(id, _)| *id)
    }
}

/// Counts of connections closed or refused for lack of slots, since start.
#[derive(Debug, Default)]
pub struct Counters {
    /// Refused at accept: the client address held `per_client` already.
    pub refused_per_client: AtomicU64,
    /// Pending connections closed to make room for newer ones.
    pub evicted_pending: AtomicU64,
    /// Idle active connections closed to make room.
    pub evicted_idle: AtomicU64,
    /// Requests answered 503: every active connection was transferring.
    pub busy: AtomicU64,
    /// Pending connections that made no request in time.
    pub timed_out_pending: AtomicU64,
    /// Active connections closed after the idle timeout.
    pub timed_out_idle: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> [u64; 6] {
        [
            self.refused_per_client.load(Ordering::Relaxed),
            self.evicted_pending.load(Ordering::Relaxed),
            self.evicted_idle.load(Ordering::Relaxed),
            self.busy.load(Ordering::Relaxed),
            self.timed_out_pending.load(Ordering::Relaxed),
            self.timed_out_idle.load(Ordering::Relaxed),
        ]
    }
}

/// The connections of a server, and its limits.
pub struct Table {
    limits: Limits,
    inner: Mutex<Inner>,
    /// What ran out, since start.
    pub counters: Counters,
}

/// Why a request is not served on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every active slot is transferring: answer 503.
    Busy,
    /// The connection was closed meanwhile (evicted or timed out).
    Closed,
}

impl Table {
    /// An empty table with these limits (each at least 1).
    pub fn new(limits: Limits) -> Arc<Table> {
        let limits = Limits {
            max_active: limits.max_active.max(1),
            max_pending: limits.max_pending.max(1),
            per_client: limits.per_client.max(1),
            ..limits
        };
        Arc::new(Table {
            limits,
            inner: Mutex::new(Inner::default()),
            counters: Counters::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a connection just accepted from `client` as pending, closing the oldest pending
    /// one if there is no room; `None` when `client` holds its share already.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Option<Conn> {
        let mut inner = self.lock();
        let held = inner.per_client.get(&client).copied().unwrap_or(0);
        if held >= self.limits.per_client {
            self.counters
                .refused_per_client
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        while inner.pending.len() >= self.limits.max_pending {
            let Some(oldest) = inner.pending.keys().next().copied() else {
                break;
            };
            inner.close_pending(oldest);
            self.counters
                .evicted_pending
                .fetch_add(1, Ordering::Relaxed);
        }
        let id = inner.next;
        inner.next += 1;
        let close = CancellationToken::new();
        inner.pending.insert(
            id,
            Entry {
                client,
                since: Instant::now(),
                running: 0,
                close: close.clone(),
            },
        );
        *inner.per_client.entry(client).or_default() += 1;
        Some(Conn {
            table: self.clone(),
            id,
            close,
        })
    }

    /// Connections open now: (pending, active).
    pub fn open(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.pending.len(), inner.active.len())
    }

    /// Closes the connections past their deadline.
    pub fn sweep(&self, now: Instant) {
        let mut inner = self.lock();
        let late: Vec<u64> = inner
            .pending
            .iter()
            .filter(|(_, e)| now.duration_since(e.since) >= self.limits.first_request)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            inner.close_pending(id);
            self.counters
                .timed_out_pending
                .fetch_add(1, Ordering::Relaxed);
        }
        let idle: Vec<u64> = inner
            .active
            .iter()
            .filter(|(_, e)| e.running == 0 && now.duration_since(e.since) >= self.limits.idle)
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            inner.close_active(id);
            self.counters.timed_out_idle.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sweeps every [`SWEEP`] and reports running out of slots every [`REPORT_EVERY`] at
    /// most, until the process ends.
    pub async fn sweeper(self: Arc<Self>) {
        let mut tick = tokio::time::interval(SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut reported = self.counters.snapshot();
        let mut last_report: Option<Instant> = None;
        loop {
            tick.tick().await;
            let now = Instant::now();
            self.sweep(now);
            if last_report.is_some_and(|at| now.duration_since(at) < REPORT_EVERY) {
                continue;
            }
            let seen = self.counters.snapshot();
            if let Some(line) = self.report(&reported, &seen, last_report.map(|at| now - at)) {
                tracing::warn!("{line}");
                reported = seen;
                last_report = Some(now);
            }
        }
    }

    /// One line saying what ran out between two snapshots, if anything did.
    fn report(
        &self,
        before: &[u64; 6],
        after: &[u64; 6],
        since: Option<Duration>,
    ) -> Option<String> {
        let d: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        let l = &self.limits;
        let what = [
            format!(
                "refused from addresses that held {} connections already (--max-connections-per-client)",
                l.per_client
            ),
            format!(
                "silent connections closed to make room for new ones ({} pending at most, --max-pending)",
                l.max_pending
            ),
            format!(
                "idle connections closed to make room ({} at most, --max-connections)",
                l.max_active
            ),
            format!(
                "requests answered 503: all {} connections were transferring (--max-connections)",
                l.max_active
            ),
        ];
        let parts: Vec<String> = d
            .iter()
            .zip(&what)
            .filter(|(n, _)| **n > 0)
            .map(|(n, text)| format!("{n} {text}"))
            .collect();
        if parts.is_empty() {
            return None;
        }
        let (pending, active) = self.open();
        let when = match since {
            Some(d) => format!("in the last {} s", d.as_secs()),
            None => "since start".to_string(),
        };
        Some(format!(
            "connection slots ran out {when} (reported at most every {} s): {}; open now: {active} active, {pending} pending",
            REPORT_EVERY.as_secs(),
            parts.join("; ")
        ))
    }
}

/// A connection's place in the [`Table`]; leaving it (Drop) frees the slot.
pub struct Conn {
    table: Arc<Table>,
    id: u64,
    close: CancellationToken,
}

impl Conn {
    /// Resolves when the table closes this connection (evicted or timed out).
    pub async fn closed(&self) {
        self.close.cancelled().await;
    }

    /// A request starts on this connection: the first one makes it active (closing the
    /// longest-idle active connection if there is no room). The guard ends the request.
    pub fn start(&self) -> Result<Running, Refusal> {
        let table = &self.table;
        let mut inner = table.lock();
        if let Some(e) = inner.active.get_mut(&self.id) {
            e.running += 1;
            return Ok(self.running());
        }
        if !inner.pending.contains_key(&self.id) {
            return Err(Refusal::Closed);
        }
        if inner.active.len() >= table.limits.max_active {
            let Some(idle) = inner.longest_idle() else {
                table.counters.busy.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Busy);
            };
            inner.close_active(idle);
            table.counters.evicted_idle.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(mut e) = inner.pending.remove(&self.id) {
            e.running = 1;
            inner.active.insert(self.id, e);
        }
        Ok(self.running())
    }

    fn running(&self) -> Running {
        Running {
            table: self.table.clone(),
            id: self.id,
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        if let Some(e) = inner.pending.remove(&self.id) {
            inner.forget(&e);
        } else if let Some(e) = inner.active.remove(&self.id) {
            inner.forget(&e);
        }
    }
}

/// A request running on an active connection; when it ends (Drop, with its response body),
/// the connection's idle time starts if no other request runs on it.
pub struct Running {
    table: Arc<Table>,
    id: u64,
}

#[cfg(test)]
impl Running {
    /// A request of no connection, for tests of the handlers.
    pub fn detached() -> Running {
        Running {
            table: Table::new(Limits {
                max_active: 1,
                max_pending: 1,
                per_client: 1,
                first_request: Duration::from_secs(1),
                idle: Duration::from_secs(1),
            }),
            id: u64::MAX,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        if let Some(e) = inner.active.get_mut(&self.id) {
            e.running = e.running.saturating_sub(1);
            if e.running == 0 {
                e.since = Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests;
