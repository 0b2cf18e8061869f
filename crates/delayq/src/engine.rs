//! The engine loop: receive queued packets, look up their pair's delay and loss, drop or
//! hold them on the schedule, and send the accepts when due, many verdicts per `send`.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::time::TimeSpec;

use crate::nfqueue::{
    parse_datagram, Event, MsgWriter, Packet, QueueSetup, QueueSocket, RecvBatch, Verdict,
};
use crate::oversleep::Oversleep;
use crate::sched::{Admit, Held, Scheduler};
use crate::window::Window;

/// Schedule resolution: ticks of 2^14 ns (16.4 us).
const TICK_SHIFT: u32 = 14;
/// 2^14 slots of 16.4 us: one wheel rotation is 268 ms; longer delays wait extra rotations.
const SLOTS_LOG2: u32 = 14;
/// Span over which the packet rate that turns polling off is measured.
const RATE_WINDOW: Duration = Duration::from_millis(50);
/// Longest sleep, so that a stop request is seen promptly.
const IDLE: Duration = Duration::from_millis(20);
/// Datagrams (one per packet) read by one `recvmmsg`.
const RECV_BATCH: usize = 64;
/// `recvmmsg` calls before due verdicts are checked again.
const MAX_BATCHES_PER_ROUND: usize = 4;
/// Room for one packet message beyond the copied bytes (headers and attributes).
const MSG_OVERHEAD: usize = 1024;
const ETH_P_IP: u16 = 0x0800;

/// What happens to packets of one (source, destination) pair.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairParams {
    /// One-way delay added, in microseconds.
    pub delay_us: u64,
    /// Probability in `[0, 1]` that a packet is dropped.
    pub loss: f64,
}

/// How the engine binds its queue and schedules verdicts.
#[derive(Clone, Copy, Debug)]
pub struct EngineConfig {
    /// NFQUEUE number the firewall rule sends packets to.
    pub queue_num: u16,
    /// Packets the kernel may hold for the engine (delayed ones included) before it drops
    /// new ones; must exceed packets/s x the longest delay.
    pub queue_maxlen: u32,
    /// Bytes of each packet copied to the engine; 20 covers the IPv4 addresses.
    pub copy_range: u32,
    /// Netlink receive buffer in bytes: packets queued while the engine is not reading
    /// wait here (about 1 KiB each); when it is full the kernel drops them.
    pub rcvbuf: usize,
    /// Poll without sleeping for this long before each due verdict: timer wake-ups are
    /// 30-130 us late on a busy (virtual) machine, polling is within a few us; costs up
    /// to this much CPU per distinct due time. From sleeps of 1 ms or more the engine also
    /// wakes earlier by how late its recent such sleeps ended (their 90th percentile, at
    /// most 1 ms) and polls that long too. Zero always sleeps.
    pub spin: Duration,
    /// Packets per second above which the engine sleeps instead of polling: a verdict is
    /// due every few microseconds anyway, and polling would take the core that the
    /// traffic's senders and receivers need (measured over the last 50 ms).
    pub spin_below_pps: u64,
    /// Seed of the loss random generator.
    pub seed: u64,
    /// `SCHED_FIFO` priority of the engine thread (it sleeps between verdicts, and must
    /// wake on time even when every core is busy); `None` keeps the normal policy.
    pub rt_priority: Option<u8>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            queue_num: 0,
            queue_maxlen: 1 << 16,
            copy_range: 20,
            rcvbuf: 32 << 20,
            spin: Duration::from_micros(200),
            spin_below_pps: 20_000,
            seed: 0x5eed,
            rt_priority: Some(10),
        }
    }
}

/// Live counters, readable from any thread while the engine runs.
#[derive(Debug, Default)]
pub struct Counters {
    /// Packets received from the queue.
    pub packets: AtomicU64,
    /// Packets held on the schedule (the others went at once or were dropped).
    pub delayed: AtomicU64,
    /// Packets dropped by the loss draw.
    pub dropped: AtomicU64,
    /// Packets accepted (at once or when due).
    pub accepted: AtomicU64,
    /// Packets held right now.
    pub held: AtomicU64,
    /// Largest delay of a verdict past its due time, in ns.
    pub max_lateness_ns: AtomicU64,
    /// Sum of lateness over delayed packets, in ns (mean = this / delayed).
    pub lateness_sum_ns: AtomicU64,
    /// Errors the kernel returned for our verdicts.
    pub verdict_errors: AtomicU64,
    /// Delayed packets by lateness: bucket `i` counts lateness below `LATENESS_UNIT << i`
    /// (bucket 0: under 16.4 us; the last bucket takes everything above).
    pub lateness_hist: [AtomicU64; LATENESS_BUCKETS],
}

/// Width of the first lateness bucket (16.4 us); each next bucket doubles.
pub const LATENESS_UNIT: Duration = Duration::from_nanos(1 << TICK_SHIFT);
/// Number of lateness buckets (the last one is open-ended, from 268 ms).
pub const LATENESS_BUCKETS: usize = 16;

impl Counters {
    fn record_lateness(&self, late_ns: u64) {
        let b = (64 - (late_ns >> TICK_SHIFT).leading_zeros()) as usize;
        self.lateness_hist[b.min(LATENESS_BUCKETS - 1)].fetch_add(1, Relaxed);
    }

    /// Upper bound of the `q`-quantile (0..=1) of lateness over delayed packets so far, at
    /// bucket resolution; `None` before any packet was delayed.
    pub fn lateness_quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self.lateness_hist.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        counts
            .iter()
            .position(|&c| {
                seen += c;
                total > 0 && seen >= rank
            })
            .map(|b| LATENESS_UNIT * (1 << b))
    }
}

/// Why the engine could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[error("NFQUEUE queue {queue_num}: {what} failed: {source}{}", hint(.source))]
pub struct Error {
    queue_num: u16,
    what: &'static str,
    source: io::Error,
}

fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        // The kernel also answers EPERM when another socket holds the queue.
        Some(libc::EPERM) => {
            "; another process may be bound to this queue (stop it or use another queue \
             number), else run as root (needs CAP_NET_ADMIN)"
        }
        Some(libc::EPROTONOSUPPORT | libc::ENOENT) => "; load the nfnetlink_queue module",
        _ => "",
    }
}

/// The delay/loss engine bound to one NFQUEUE queue.
pub struct Engine<L> {
    sock: QueueSocket,
    cfg: EngineConfig,
    lookup: L,
    counters: Arc<Counters>,
}

/// Everything the loop mutates besides the socket.
struct State {
    sched: Scheduler,
    window: Window,
    writer: MsgWriter,
    accepts: Vec<u32>,
    due: Vec<Held>,
    rng: fastrand::Rng,
    queue_num: u16,
    counters: Arc<Counters>,
}

fn ipv4_pair(p: &Packet<'_>) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let h = p.payload;
    if p.hw_protocol != ETH_P_IP || h.len() < 20 || h[0] >> 4 != 4 {
        return None;
    }
    let addr = |at: usize| Ipv4Addr::new(h[at], h[at + 1], h[at + 2], h[at + 3]);
    Some((addr(12), addr(16)))
}

impl State {
    fn on_event(
        &mut self,
        ev: Event<'_>,
        now: u64,
        lookup: &impl Fn(Ipv4Addr, Ipv4Addr) -> PairParams,
    ) {
        match ev {
            Event::Packet(p) => {
                let params = ipv4_pair(&p).map(|(s, d)| {
                    let key = u64::from(u32::from(s)) << 32 | u64::from(u32::from(d));
                    (key, lookup(s, d))
                });
                self.on_packet(&p, now, params);
            }
            Event::Error { .. } => {
                self.counters.verdict_errors.fetch_add(1, Relaxed);
            }
            Event::Ack => {}
        }
    }

    fn on_packet(&mut self, p: &Packet<'_>, now: u64, params: Option<(u64, PairParams)>) {
        let c = &self.counters;
        c.packets.fetch_add(1, Relaxed);
        self.window.received(p.id);
        let Some((key, pp)) = params else {
            self.accepts.push(p.id);
            return;
        };
        if pp.loss > 0.0 && self.rng.f64() < pp.loss {
            self.writer.verdict(self.queue_num, p.id, Verdict::Drop);
            self.window.done(p.id);
            c.dropped.fetch_add(1, Relaxed);
            return;
        }
        match self.sched.admit(key, p.id, now, pp.delay_us * 1000) {
            Admit::Now => self.accepts.push(p.id),
            Admit::Held => {
                c.delayed.fetch_add(1, Relaxed);
            }
        }
    }

    /// Accepts what is due at `now` (everything when `now` is `None`) and encodes it.
    fn release(&mut self, now: Option<u64>) {
        let c = &self.counters;
        let (mut sum, mut max) = (0, 0);
        match now {
            Some(t) => {
                self.sched.expire(t, &mut self.due);
                for h in &self.due {
                    let late = t.saturating_sub(h.due_ns);
                    c.record_lateness(late);
                    sum += late;
                    max = max.max(late);
                }
            }
            // Stopping: everything goes now, early; that is no lateness.
            None => self.sched.drain_all(&mut self.due),
        }
        self.accepts.extend(self.due.drain(..).map(|h| h.id));
        c.lateness_sum_ns.fetch_add(sum, Relaxed);
        c.max_lateness_ns.fetch_max(max, Relaxed);
        c.accepted.fetch_add(self.accepts.len() as u64, Relaxed);
        c.held.store(self.sched.held() as u64, Relaxed);
        self.window
            .accept(&mut self.accepts, &mut self.writer, self.queue_num);
    }
}

fn elapsed_ns(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

impl<L> Engine<L>
where
    L: Fn(Ipv4Addr, Ipv4Addr) -> PairParams + Send + 'static,
{
    /// Binds queue `cfg.queue_num` (fail-open off, headers only) and takes the pair lookup.
    /// The lookup is called for every packet, so parameters it reads from shared state
    /// (an `Arc<RwLock<..>>` the caller updates) take effect at once.
    pub fn new(cfg: EngineConfig, lookup: L) -> Result<Self, Error> {
        let setup = QueueSetup {
            queue_num: cfg.queue_num,
            copy_range: cfg.copy_range,
            queue_maxlen: cfg.queue_maxlen,
            rcvbuf: cfg.rcvbuf,
        };
        let sock = QueueSocket::bind(&setup).map_err(|(what, source)| Error {
            queue_num: cfg.queue_num,
            what,
            source,
        })?;
        Ok(Self {
            sock,
            cfg,
            lookup,
            counters: Arc::default(),
        })
    }

    /// The engine's counters (shared; they keep counting while `run` goes on).
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    fn err(&self, what: &'static str) -> impl Fn(io::Error) -> Error {
        let queue_num = self.cfg.queue_num;
        move |source| Error {
            queue_num,
            what,
            source,
        }
    }

    /// Makes the calling thread's sleeps end on time: 1 ns timer slack (instead of 50 us)
    /// and, if configured, the `SCHED_FIFO` policy.
    fn set_thread_timing(&self) -> Result<(), Error> {
        // Best effort: where the kernel refuses, the thread keeps the default slack.
        let _ = nix::sys::prctl::set_timerslack(1);
        let Some(prio) = self.cfg.rt_priority else {
            return Ok(());
        };
        let param = libc::sched_param {
            sched_priority: i32::from(prio),
        };
        // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is this thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
            return Err(self
                .err("set SCHED_FIFO priority (set rt_priority to None to skip)")(
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Runs until `stop` is set, then accepts every held packet and returns.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), Error> {
        self.set_thread_timing()?;
        let start = Instant::now();
        let mut st = State {
            sched: Scheduler::new(TICK_SHIFT, SLOTS_LOG2, 0),
            window: Window::default(),
            writer: MsgWriter::default(),
            accepts: Vec::new(),
            due: Vec::new(),
            rng: fastrand::Rng::with_seed(self.cfg.seed),
            queue_num: self.cfg.queue_num,
            counters: Arc::clone(&self.counters),
        };
        let slot = self.cfg.copy_range as usize + MSG_OVERHEAD;
        let mut batch = RecvBatch::new(RECV_BATCH, slot);
        let window_ns = RATE_WINDOW.as_nanos() as u64;
        let (mut window_start, mut window_packets, mut spin) = (0, 0, self.cfg.spin);
        let mut oversleep = Oversleep::default();
        loop {
            let now = elapsed_ns(start);
            let stopping = stop.load(Relaxed);
            st.release((!stopping).then_some(now));
            self.sock
                .send(&mut st.writer)
                .map_err(self.err("send verdicts"))?;
            if stopping {
                return Ok(());
            }
            if now - window_start >= window_ns {
                let busy =
                    window_packets * 1_000_000_000 > self.cfg.spin_below_pps * (now - window_start);
                spin = if busy { Duration::ZERO } else { self.cfg.spin };
                (window_start, window_packets) = (now, 0);
            }
            self.wait(st.sched.next_wake_ns(), start, now, spin, &mut oversleep)
                .map_err(self.err("wait for packets"))?;
            for _ in 0..MAX_BATCHES_PER_ROUND {
                let n = self
                    .sock
                    .recv_batch(&mut batch)
                    .map_err(self.err("receive packets"))?;
                let now = elapsed_ns(start);
                window_packets += n as u64;
                for d in batch.datagrams() {
                    parse_datagram(d, |ev| st.on_event(ev, now, &self.lookup));
                }
                if n < RECV_BATCH || st.sched.next_wake_ns().is_some_and(|w| w <= now) {
                    break;
                }
            }
        }
    }

    /// Waits until packets arrive or `wake_ns` comes: sleeps, except for the last `spin`
    /// before the deadline, which it spends polling without sleeping. When polling is on
    /// (`spin` not zero) it also wakes from a long sleep earlier by the margin recent long
    /// sleeps overslept by, and polls that long too.
    fn wait(
        &self,
        wake_ns: Option<u64>,
        start: Instant,
        now: u64,
        spin: Duration,
        oversleep: &mut Oversleep,
    ) -> io::Result<()> {
        let left = wake_ns.map_or(IDLE, |w| {
            Duration::from_nanos(w.saturating_sub(now)).min(IDLE)
        });
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        let early = if spin.is_zero() {
            Duration::ZERO
        } else {
            spin + oversleep.margin(left.saturating_sub(spin))
        };
        let polling = !left.is_zero() && left <= early;
        let timeout = if polling {
            Duration::ZERO
        } else {
            left.saturating_sub(early)
        };
        let deadline = now + left.as_nanos() as u64;
        loop {
            match ppoll(&mut fds, Some(TimeSpec::from_duration(timeout)), None) {
                Ok(0) if polling && elapsed_ns(start) < deadline => std::hint::spin_loop(),
                Ok(0) if !polling => {
                    let asked = now + timeout.as_nanos() as u64;
                    let late = elapsed_ns(start).saturating_sub(asked);
                    oversleep.record(timeout, Duration::from_nanos(late));
                    return Ok(());
                }
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 4, 5, 6);

    /// The loop's state as `run` sets it up, without a socket.
    fn state() -> State {
        State {
            sched: Scheduler::new(TICK_SHIFT, SLOTS_LOG2, 0),
            window: Window::default(),
            writer: MsgWriter::default(),
            accepts: Vec::new(),
            due: Vec::new(),
            rng: fastrand::Rng::with_seed(1),
            queue_num: 0,
            counters: Arc::default(),
        }
    }

    /// The first 20 bytes of an IPv4 packet from `src` to `dst`.
    fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr) -> [u8; 20] {
        let mut h = [0; 20];
        h[0] = 0x45;
        // the other fields as in a real header: nothing but the addresses may be read
        h[2..12].copy_from_slice(&[0, 60, 0x12, 0x34, 0x40, 0, 64, 6, 0xab, 0xcd]);
        h[12..16].copy_from_slice(&src.octets());
        h[16..20].copy_from_slice(&dst.octets());
        h
    }

    /// Feeds packet `id` from SRC to DST at `now`, with the pair's parameters `pp`.
    fn arrive(st: &mut State, id: u32, now: u64, pp: PairParams) {
        arrive_on(st, (SRC, DST), id, now, pp);
    }

    /// Feeds packet `id` of `pair` at `now`, with the pair's parameters `pp` (the lookup
    /// checks it is asked about that pair, source first).
    fn arrive_on(st: &mut State, pair: (Ipv4Addr, Ipv4Addr), id: u32, now: u64, pp: PairParams) {
        let h = ipv4_header(pair.0, pair.1);
        let p = Packet {
            id,
            hw_protocol: ETH_P_IP,
            payload: &h,
        };
        st.on_event(Event::Packet(p), now, &|s, d| {
            assert_eq!((s, d), pair);
            pp
        });
    }

    /// A pair delayed `delay_us`, without loss.
    fn delayed(delay_us: u64) -> PairParams {
        PairParams {
            delay_us,
            loss: 0.0,
        }
    }

    /// A pair losing `loss` of its packets, without delay.
    fn lossy(loss: f64) -> PairParams {
        PairParams { delay_us: 0, loss }
    }

    /// The value of counter `c`.
    fn count(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }

    #[test]
    fn a_packet_delayed_50_ms_is_accepted_in_the_tick_it_is_due() {
        let mut st = state();
        let arrival = 7_000_000_000;
        let pp = delayed(50_000);
        arrive(&mut st, 1, arrival, pp);
        let c = Arc::clone(&st.counters);
        assert_eq!((count(&c.packets), count(&c.delayed)), (1, 1));
        let due_tick_start = (arrival + 50_000_000) >> TICK_SHIFT << TICK_SHIFT;
        st.release(Some(due_tick_start - 1));
        assert_eq!((count(&c.accepted), count(&c.held)), (0, 1));
        assert!(st.writer.as_bytes().is_empty());
        st.release(Some(due_tick_start));
        assert_eq!((count(&c.accepted), count(&c.held)), (1, 0));
        assert!(!st.writer.as_bytes().is_empty());
        // released within its tick, before the exact due time: not late
        assert_eq!(count(&c.max_lateness_ns), 0);
        assert_eq!(count(&c.lateness_hist[0]), 1);
    }

    #[test]
    fn lateness_is_counted_from_the_due_time() {
        let mut st = state();
        let pp = delayed(10_000);
        arrive(&mut st, 1, 1_000_000, pp);
        arrive(&mut st, 2, 1_000_000, pp);
        // due at 11 ms, released at 11.1 ms: 100 us late each, in [65.5, 131) us: bucket 3
        st.release(Some(11_100_000));
        let c = &st.counters;
        assert_eq!(count(&c.accepted), 2);
        assert_eq!(count(&c.max_lateness_ns), 100_000);
        assert_eq!(count(&c.lateness_sum_ns), 200_000);
        assert_eq!(count(&c.lateness_hist[3]), 2);
        assert_eq!(c.lateness_quantile(0.5), Some(LATENESS_UNIT * 8));
    }

    #[test]
    fn lateness_quantiles_are_bucket_upper_bounds() {
        let c = Counters::default();
        assert_eq!(c.lateness_quantile(0.99), None);
        // 0 ns, 16.4 us (bucket 1), 1 ms (bucket 6), an hour (the last bucket)
        for late in [0, 1 << TICK_SHIFT, 1_000_000, 3_600_000_000_000] {
            c.record_lateness(late);
        }
        let counts: Vec<u64> = c.lateness_hist.iter().map(count).collect();
        let mut want = [0; LATENESS_BUCKETS];
        for b in [0, 1, 6, LATENESS_BUCKETS - 1] {
            want[b] = 1;
        }
        assert_eq!(counts, want);
        assert_eq!(c.lateness_quantile(0.0), Some(LATENESS_UNIT));
        assert_eq!(c.lateness_quantile(0.25), Some(LATENESS_UNIT));
        assert_eq!(c.lateness_quantile(0.5), Some(LATENESS_UNIT * 2));
        assert_eq!(c.lateness_quantile(0.75), Some(LATENESS_UNIT * 64));
        assert_eq!(c.lateness_quantile(1.0), Some(LATENESS_UNIT * (1 << 15)));
    }

    #[test]
    fn loss_drops_its_share_of_packets() {
        let mut st = state();
        let pp = lossy(0.25);
        for id in 0..4000 {
            arrive(&mut st, id, 1_000, pp);
        }
        st.release(Some(1_000));
        let c = &st.counters;
        let dropped = count(&c.dropped);
        // binomial(4000, 0.25): mean 1000, sd 27.4; within 5 sd
        assert!((863..=1137).contains(&dropped), "{dropped} dropped");
        assert_eq!(count(&c.accepted), 4000 - dropped);
        assert_eq!(count(&c.delayed), 0);
        for (loss, dropped) in [(0.0, 0), (1.0, 100)] {
            let mut st = state();
            for id in 0..100 {
                arrive(&mut st, id, 1_000, lossy(loss));
            }
            assert_eq!(count(&st.counters.dropped), dropped, "loss {loss}");
        }
    }

    #[test]
    fn packets_without_an_ipv4_pair_go_at_once() {
        let mut st = state();
        let h = ipv4_header(SRC, DST);
        let mut v6 = h;
        v6[0] = 0x60;
        let no_lookup = |_: Ipv4Addr, _: Ipv4Addr| -> PairParams { panic!("not an IPv4 pair") };
        for (id, hw_protocol, payload) in [
            (1, 0x86dd, &h[..]),
            (2, ETH_P_IP, &v6[..]),
            (3, ETH_P_IP, &h[..19]),
        ] {
            let p = Packet {
                id,
                hw_protocol,
                payload,
            };
            st.on_event(Event::Packet(p), 5_000, &no_lookup);
        }
        st.release(Some(5_000));
        assert_eq!(count(&st.counters.accepted), 3);
        assert_eq!(count(&st.counters.delayed), 0);
    }

    #[test]
    fn only_packets_of_the_same_pair_wait_for_each_other() {
        let mut st = state();
        let (a, b, c) = (SRC, DST, Ipv4Addr::new(10, 4, 5, 7));
        let held = delayed(50_000);
        let at_once = PairParams::default();
        arrive_on(&mut st, (a, b), 1, 1_000, held);
        // same destination, same source, the reverse way: other pairs, not held behind 1
        for (id, pair) in [(2, (c, b)), (3, (a, c)), (4, (b, a))] {
            arrive_on(&mut st, pair, id, 1_000, at_once);
        }
        // the same pair: behind 1 although its own delay is zero
        arrive_on(&mut st, (a, b), 5, 1_000, at_once);
        st.release(Some(1_000));
        let counters = &st.counters;
        assert_eq!((count(&counters.accepted), count(&counters.held)), (3, 2));
    }
}
