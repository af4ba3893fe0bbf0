//! One measured trial: send at a rate, drain for a settle time, account.

use std::time::Duration;

use serde::Serialize;

use super::flows::Traffic;
use super::frame::{FrameSize, Stamp};
use super::port::{FramePort, NullPort};
use super::rate::{Clock, Pacer};
use super::rx::{LatencyStats, RxTracker};

/// Frames taken from a receive queue per call.
const RX_BATCH: usize = 256;
/// How long the settle loop waits between empty polls.
const SETTLE_POLL_NS: u64 = 20_000;
/// A send that accepted nothing is retried after this.
const RETRY_NS: u64 = 1_000;
/// Sending gives up when the port accepts nothing for this long (e.g. no peer attached).
const STALL_NS: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Length {
    Frames(u64),
    /// Ends at the deadline even when the generator could not keep up.
    Duration(Duration),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrialSpec {
    /// The total over all transmit queues, which take bursts in turn.
    pub pps: f64,
    pub length: Length,
    pub tx_queues: Vec<u16>,
    /// Empty: every queue of the receiving port.
    pub rx_queues: Vec<u16>,
    /// The most frames per send call; also how far the sender may catch up after a stall.
    pub burst: usize,
    /// How long to keep receiving after the last frame went out. The wait ends early once
    /// every frame is accounted for, so lossless trials do not pay it.
    pub settle: Duration,
    /// Written into every frame; frames of other streams (late ones from an earlier
    /// trial) are counted apart.
    pub stream: u16,
}

impl TrialSpec {
    pub fn new(pps: f64, length: Length) -> TrialSpec {
        TrialSpec {
            pps,
            length,
            tx_queues: vec![0],
            rx_queues: Vec::new(),
            burst: 32,
            // RFC 2544 23: wait two seconds for frames still in flight.
            settle: Duration::from_secs(2),
            stream: 1,
        }
    }
}

/// Where frames go and come from: one port that gets its own frames back (through a
/// switch's hairpin or a loopback), or separate transmit and receive ports.
pub enum Ports<'a> {
    Same(&'a mut dyn FramePort),
    Split {
        tx: &'a mut dyn FramePort,
        rx: &'a mut dyn FramePort,
    },
}

impl Ports<'_> {
    fn tx(&mut self) -> &mut dyn FramePort {
        match self {
            Ports::Same(p) => &mut **p,
            Ports::Split { tx, .. } => &mut **tx,
        }
    }

    fn rx(&mut self) -> &mut dyn FramePort {
        match self {
            Ports::Same(p) => &mut **p,
            Ports::Split { rx, .. } => &mut **rx,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TrialResult {
    pub frame_size: String,
    /// With FCS; the mean for a mix.
    pub mean_frame_size: f64,
    pub offered_pps: f64,
    /// Frames sent over the time it took to send them.
    pub achieved_pps: f64,
    pub tx: u64,
    /// Distinct frames received.
    pub rx: u64,
    pub lost: u64,
    pub loss_pct: f64,
    pub duplicates: u64,
    pub reordered: u64,
    pub stale: u64,
    pub foreign: u64,
    pub unexpected: u64,
    /// Send calls that took fewer frames than offered (a full ring).
    pub tx_short: u64,
    /// The port accepted nothing for a second and the trial stopped sending.
    pub stalled: bool,
    pub latency: LatencyStats,
}

impl TrialResult {
    /// `tolerance_pct` of the frames sent may be lost, and the generator must have kept
    /// up with the offered rate: a trial it could not drive at that rate proves nothing
    /// about the device at that rate.
    pub fn passed(&self, tolerance_pct: f64) -> bool {
        self.tx > 0
            && !self.stalled
            && self.kept_up()
            && self.lost as f64 <= self.tx as f64 * tolerance_pct / 100.0
    }

    /// Whether the frames went out within 1% of the offered rate.
    pub fn kept_up(&self) -> bool {
        self.achieved_pps >= self.offered_pps * 0.99
    }
}

fn poll(
    rx: &mut dyn FramePort,
    queues: &[u16],
    tracker: &mut RxTracker,
    clock: &dyn Clock,
) -> usize {
    let now = clock.now_ns();
    queues
        .iter()
        .map(|&q| rx.recv(q, RX_BATCH, &mut |f| tracker.record(f, now)))
        .sum()
}

/// Checks `spec` against the ports: the transmit queues, the receive queues (`rx_count`
/// of them; empty: all), the rate. Returns the receive queues.
fn check_spec(spec: &TrialSpec, tx_count: u16, rx_count: u16) -> Result<Vec<u16>, String> {
    let rx_queues: Vec<u16> = if spec.rx_queues.is_empty() {
        (0..rx_count).collect()
    } else {
        spec.rx_queues.clone()
    };
    if spec.tx_queues.is_empty() || spec.tx_queues.iter().any(|&q| q >= tx_count) {
        return Err(format!(
            "transmit queues {:?}: the port has {tx_count}",
            spec.tx_queues
        ));
    }
    if rx_queues.iter().any(|&q| q >= rx_count) {
        return Err(format!(
            "receive queues {rx_queues:?}: the port has {rx_count}"
        ));
    }
    if !(spec.pps > 0.0 && spec.pps.is_finite()) {
        return Err(format!("bad rate {} pps", spec.pps));
    }
    Ok(rx_queues)
}

/// What the send loop of a trial drives: a way to put frames on a queue, and a receiver
/// to poll between bursts.
trait Sender {
    /// Puts up to `want` frames on transmit queue `queue` at `now`; returns how many.
    fn send(&mut self, queue: u16, want: usize, now: u64) -> usize;
    /// Takes what has arrived; returns how many frames.
    fn poll(&mut self, clock: &dyn Clock) -> usize;
}

/// What the send loop did.
struct Sent {
    /// When the schedule started.
    start: u64,
    frames: u64,
    /// Send calls that took fewer frames than offered.
    short: u64,
    /// When the last frame went out.
    last_tx: u64,
    stalled: bool,
}

/// Sends `spec.length` at `spec.pps`, giving the transmit queues bursts in turn and
/// polling for received frames between bursts.
fn send_paced(sender: &mut impl Sender, clock: &dyn Clock, spec: &TrialSpec) -> Sent {
    let start = clock.now_ns();
    let (total, deadline) = match spec.length {
        Length::Frames(n) => (n, u64::MAX),
        Length::Duration(d) => (
            (spec.pps * d.as_secs_f64()).ceil() as u64,
            start + d.as_nanos() as u64,
        ),
    };
    let mut pacer = Pacer::new(spec.pps, spec.burst, start);
    let (mut sent, mut short, mut next_queue) = (0u64, 0u64, 0usize);
    let mut last_tx = start;
    let (mut stuck_since, mut stalled) = (None, false);
    while sent < total {
        let now = clock.now_ns();
        if now >= deadline {
            break;
        }
        let want = (pacer.allowed(now) as u64).min(total - sent) as usize;
        let mut done = 0;
        if want > 0 {
            let queue = spec.tx_queues[next_queue];
            next_queue = (next_queue + 1) % spec.tx_queues.len();
            done = sender.send(queue, want, now);
            sent += done as u64;
            pacer.sent(done);
            if done < want {
                short += 1;
            }
            if done > 0 {
                last_tx = now;
                stuck_since = None;
            } else if now - *stuck_since.get_or_insert(now) > STALL_NS {
                stalled = true;
                break;
            }
        }
        let got = sender.poll(clock);
        if got == 0 {
            if want == 0 {
                clock.pause(pacer.next_due());
            } else if done < want {
                clock.pause(now + RETRY_NS);
            }
        }
    }
    Sent {
        start,
        frames: sent,
        short,
        last_tx,
        stalled,
    }
}

/// Frames built as they go out, each with its queue, sequence number and timestamp, and
/// the receiver that tracks them.
struct Built<'t, 'p> {
    traffic: &'t mut Traffic,
    ports: Ports<'p>,
    rx_queues: Vec<u16>,
    tracker: RxTracker,
    /// The next sequence number per transmit queue.
    seqs: Vec<u64>,
    stream: u16,
}

impl Sender for Built<'_, '_> {
    fn send(&mut self, queue: u16, want: usize, now: u64) -> usize {
        let seq0 = self.seqs[usize::from(queue)];
        let (stream, traffic) = (self.stream, &mut *self.traffic);
        let done = self.ports.tx().send(queue, want, &mut |i, buf| {
            let st = Stamp {
                stream,
                queue,
                seq: seq0 + i as u64,
                ts: now,
            };
            traffic.fill(buf, &st)
        });
        self.seqs[usize::from(queue)] += done as u64;
        done
    }

    fn poll(&mut self, clock: &dyn Clock) -> usize {
        poll(self.ports.rx(), &self.rx_queues, &mut self.tracker, clock)
    }
}

/// Frames written once into the transmit buffers (`FramePort::fix_frames`), sent again
/// and again; nothing is received.
struct Fixed<'p> {
    port: &'p mut dyn FramePort,
}

impl Sender for Fixed<'_> {
    fn send(&mut self, queue: u16, want: usize, _now: u64) -> usize {
        self.port.send_fixed(queue, want)
    }

    fn poll(&mut self, _clock: &dyn Clock) -> usize {
        0
    }
}

/// The result of a trial that sent `sent` and received what `tracker` counted.
fn trial_result(
    traffic: &Traffic,
    spec: &TrialSpec,
    sent: &Sent,
    tracker: &RxTracker,
) -> TrialResult {
    let counts = tracker.totals();
    let tx = sent.frames;
    let lost = tx.saturating_sub(counts.received);
    // From the schedule's start, not the first send: a late start must not read as a
    // rate above the offered one.
    let span = (sent.last_tx - sent.start) as f64 + 1e9 / spec.pps;
    TrialResult {
        frame_size: traffic.size().label(),
        mean_frame_size: traffic.mean_frame_size(),
        offered_pps: spec.pps,
        achieved_pps: if tx > 0 { tx as f64 * 1e9 / span } else { 0.0 },
        tx,
        rx: counts.received,
        lost,
        loss_pct: if tx > 0 {
            lost as f64 * 100.0 / tx as f64
        } else {
            0.0
        },
        duplicates: counts.duplicates,
        reordered: counts.reordered,
        stale: counts.stale,
        foreign: counts.foreign,
        unexpected: counts.unexpected,
        tx_short: sent.short,
        stalled: sent.stalled,
        latency: tracker.latency().stats(),
    }
}

/// Runs one trial. Errors only for a spec that does not fit the ports.
pub fn run_trial(
    traffic: &mut Traffic,
    mut ports: Ports<'_>,
    clock: &dyn Clock,
    spec: &TrialSpec,
) -> Result<TrialResult, String> {
    let (tx_count, rx_count) = (ports.tx().queues(), ports.rx().queues());
    let rx_queues = check_spec(spec, tx_count, rx_count)?;
    let queue_slots = spec.tx_queues.iter().max().map_or(1, |&q| q + 1);
    traffic.rewind();
    let mut built = Built {
        traffic,
        ports,
        rx_queues,
        tracker: RxTracker::new(spec.stream, 1, queue_slots),
        seqs: vec![0u64; usize::from(queue_slots)],
        stream: spec.stream,
    };
    let sent = send_paced(&mut built, clock, spec);

    let settle_end = clock.now_ns() + spec.settle.as_nanos() as u64;
    loop {
        let got = built.poll(clock);
        if built.tracker.totals().received >= sent.frames {
            break;
        }
        let now = clock.now_ns();
        if now >= settle_end {
            break;
        }
        if got == 0 {
            clock.pause((now + SETTLE_POLL_NS).min(settle_end));
        }
    }
    Ok(trial_result(built.traffic, spec, &sent, &built.tracker))
}

/// How a transmit-only trial sent its frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxOnlyMode {
    /// Each transmit queue had `frames` frames written once into its buffers and sent
    /// them again and again.
    Fixed { frames: usize },
    /// Frames were built one by one as they went out, as in a trial that receives: the
    /// sequence of flows and sizes repeats only every `cycle` frames (None: beyond
    /// `u64`), more than a transmit queue's `capacity` buffers hold, or the port cannot
    /// hold fixed frames (`capacity` 0).
    Built { cycle: Option<u64>, capacity: usize },
}

/// Runs a transmit-only trial on `port`: `spec` as for `run_trial`, but nothing is
/// received (`rx` is 0 and every frame counts as lost, as `run_trial` would count them
/// with a receiver that gets nothing).
///
/// Frames are not built as they go out. The sequence `traffic` writes (flow `k mod
/// flows`, size `k mod` the size order) repeats every `traffic.cycle()` frames; each
/// transmit queue gets the largest whole number of cycles its buffers hold, written
/// once, buffer `k` holding frame `k` of the sequence, and sends them in turn, 0, 1, ...,
/// again and again. So the frames on the wire are the sequence `run_trial` would send,
/// flows and sizes in the same order and mix, but for what no transmit-only receiver
/// looks at: each frame carries its buffer's number as its sequence number, and a
/// timestamp of 0. When one cycle does not fit in a queue's buffers (more flows than
/// buffers, say), frames are built one by one instead, as `run_trial` does.
pub fn run_tx_only(
    traffic: &mut Traffic,
    port: &mut dyn FramePort,
    clock: &dyn Clock,
    spec: &TrialSpec,
) -> Result<(TrialResult, TxOnlyMode), String> {
    let capacity = port.fixed_capacity();
    let cycle = traffic.cycle();
    let frames = match cycle {
        Some(c) if c <= capacity as u64 => capacity - capacity % c as usize,
        _ => {
            let ports = Ports::Split {
                tx: port,
                rx: &mut NullPort,
            };
            let r = run_trial(traffic, ports, clock, spec)?;
            return Ok((r, TxOnlyMode::Built { cycle, capacity }));
        }
    };
    check_spec(spec, port.queues(), 1)?;
    let mut queues = spec.tx_queues.clone();
    queues.sort_unstable();
    queues.dedup();
    for queue in queues {
        traffic.rewind();
        port.fix_frames(queue, frames, &mut |k, buf| {
            let st = Stamp {
                stream: spec.stream,
                queue,
                seq: k as u64,
                ts: 0,
            };
            traffic.fill(buf, &st)
        })?;
    }
    let sent = send_paced(&mut Fixed { port }, clock, spec);
    let nothing = RxTracker::new(spec.stream, 1, 1);
    Ok((
        trial_result(traffic, spec, &sent, &nothing),
        TxOnlyMode::Fixed { frames },
    ))
}

/// Runs trials for the RFC 2544 procedures.
pub trait TrialRunner {
    /// The frame size (with FCS, mean for a mix) that will actually be sent for `size`,
    /// which line-rate arithmetic must use.
    fn effective_size(&mut self, size: &FrameSize) -> Result<f64, String>;
    fn trial(
        &mut self,
        size: &FrameSize,
        pps: f64,
        length: Length,
        stream: u16,
    ) -> Result<TrialResult, String>;
}

/// Runs trials on real (or loopback) ports.
pub struct PortRunner<'a> {
    pub traffic: Traffic,
    pub ports: Ports<'a>,
    pub clock: &'a dyn Clock,
    /// `pps`, `length` and `stream` are set per trial; the rest is used as given.
    pub spec: TrialSpec,
}

impl TrialRunner for PortRunner<'_> {
    fn effective_size(&mut self, size: &FrameSize) -> Result<f64, String> {
        self.traffic.set_size(size)?;
        Ok(self.traffic.mean_frame_size())
    }

    fn trial(
        &mut self,
        size: &FrameSize,
        pps: f64,
        length: Length,
        stream: u16,
    ) -> Result<TrialResult, String> {
        if self.traffic.size() != size {
            self.traffic.set_size(size)?;
        }
        let spec = TrialSpec {
            pps,
            length,
            stream,
            ..self.spec.clone()
        };
        let ports = match &mut self.ports {
            Ports::Same(p) => Ports::Same(&mut **p),
            Ports::Split { tx, rx } => Ports::Split {
                tx: &mut **tx,
                rx: &mut **rx,
            },
        };
        run_trial(&mut self.traffic, ports, self.clock, &spec)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::super::flows::FlowSpec;
    use super::super::frame::{parse, MAX_WIRE};
    use super::super::port::{Loopback, LoopbackConfig, RateLimit};
    use super::super::rate::{MonotonicClock, VirtualClock};
    use super::*;

    fn traffic(size: u32) -> Traffic {
        Traffic::new(&FlowSpec::default(), &FrameSize::Fixed(size)).unwrap()
    }

    fn spec(pps: f64, frames: u64) -> TrialSpec {
        TrialSpec {
            settle: Duration::from_millis(1),
            ..TrialSpec::new(pps, Length::Frames(frames))
        }
    }

    #[test]
    fn lossless_hairpin_trial_counts_every_frame() {
        let clock = VirtualClock::new(1_000);
        let mut port = Loopback::hairpin(&LoopbackConfig::default());
        let r = run_trial(
            &mut traffic(64),
            Ports::Same(&mut port),
            &clock,
            &spec(1e6, 10_000),
        )
        .unwrap();
        assert_eq!(
            (r.tx, r.rx, r.lost, r.duplicates, r.reordered),
            (10_000, 10_000, 0, 0, 0)
        );
        assert!(r.passed(0.0));
        assert_eq!(r.frame_size, "64");
        // Virtual time: every frame is due 1 µs after the previous one and sent on time.
        assert!((r.achieved_pps - 1e6).abs() < 1.0, "{}", r.achieved_pps);
        assert_eq!(clock.now_ns(), 1_000 + 9_999_000);
        assert_eq!(r.latency.count, 10_000);
    }

    #[test]
    fn split_ports_multiqueue_with_injections() {
        let clock = VirtualClock::new(0);
        let cfg = LoopbackConfig {
            queues: 4,
            drop_every: 100,
            duplicate_every: 50,
            reorder_every: 33,
            ..LoopbackConfig::default()
        };
        let (mut a, mut b) = Loopback::pair(&cfg);
        let s = TrialSpec {
            tx_queues: vec![0, 1, 2, 3],
            burst: 8,
            ..spec(4e6, 40_000)
        };
        let r = run_trial(
            &mut traffic(128),
            Ports::Split {
                tx: &mut a,
                rx: &mut b,
            },
            &clock,
            &s,
        )
        .unwrap();
        // Per queue, of 10,000: dropped, the 100 multiples of 100. Duplicated, the 100
        // multiples of 50 that are not dropped. Held, the 303 multiples of 33 less 3300,
        // 6600 and 9900 (dropped first); of those 300, 9999 is never released because
        // 10,000 is dropped, so it is lost, and 299 arrive late.
        assert_eq!(r.tx, 40_000);
        assert_eq!(r.lost, 4 * 101);
        assert_eq!(r.duplicates, 4 * 100);
        assert_eq!(r.reordered, 4 * 299);
        assert!(!r.passed(1.0));
        assert!(r.passed(1.1));
        assert!((r.loss_pct - 1.01).abs() < 1e-9);
    }

    #[test]
    fn rate_limited_loopback_loses_exactly_the_excess() {
        let clock = VirtualClock::new(0);
        let cfg = LoopbackConfig {
            rate_limit: Some(RateLimit {
                pps: 500_000.0,
                depth: 32.0,
                clock: Arc::new(clock.clone()),
            }),
            ..LoopbackConfig::default()
        };
        let mut port = Loopback::hairpin(&cfg);
        let below = run_trial(
            &mut traffic(64),
            Ports::Same(&mut port),
            &clock,
            &spec(499_000.0, 50_000),
        );
        assert_eq!(below.unwrap().lost, 0);
        let mut port = Loopback::hairpin(&cfg);
        let r = run_trial(
            &mut traffic(64),
            Ports::Same(&mut port),
            &clock,
            &spec(1e6, 50_000),
        )
        .unwrap();
        // 50,000 frames over 50 ms at twice the capacity: 25,000 plus the bucket get through.
        assert!((25_000 + 31..=25_000 + 33).contains(&r.rx), "{}", r.rx);
    }

    #[test]
    fn duration_trials_send_rate_times_duration() {
        let clock = VirtualClock::new(0);
        let mut port = Loopback::hairpin(&LoopbackConfig::default());
        let s = TrialSpec {
            length: Length::Duration(Duration::from_millis(20)),
            ..spec(250_000.0, 0)
        };
        let r = run_trial(&mut traffic(1518), Ports::Same(&mut port), &clock, &s).unwrap();
        assert_eq!(r.tx, 5_000);
        assert_eq!(r.rx, 5_000);
    }

    #[test]
    fn late_frames_of_an_earlier_trial_are_not_counted() {
        let clock = VirtualClock::new(0);
        let mut port = Loopback::hairpin(&LoopbackConfig::default());
        let mut t = traffic(64);
        // Stream 5 frames left in the port, as if they arrived after their trial ended.
        port.send(0, 10, &mut |i, buf| {
            t.fill(
                buf,
                &Stamp {
                    stream: 5,
                    queue: 0,
                    seq: i as u64,
                    ts: 0,
                },
            )
        });
        let s = TrialSpec {
            stream: 6,
            ..spec(1e5, 100)
        };
        let r = run_trial(&mut t, Ports::Same(&mut port), &clock, &s).unwrap();
        assert_eq!((r.rx, r.unexpected, r.duplicates), (100, 10, 0));
    }

    #[test]
    fn a_port_that_takes_nothing_stalls_instead_of_hanging() {
        struct Dead;
        impl FramePort for Dead {
            fn queues(&self) -> u16 {
                1
            }
            fn send(
                &mut self,
                _: u16,
                _: usize,
                _: &mut dyn FnMut(usize, &mut [u8]) -> usize,
            ) -> usize {
                0
            }
            fn recv(&mut self, _: u16, _: usize, _: &mut dyn FnMut(&[u8])) -> usize {
                0
            }
        }
        let clock = VirtualClock::new(0);
        let r = run_trial(
            &mut traffic(64),
            Ports::Same(&mut Dead),
            &clock,
            &spec(1e6, 10),
        )
        .unwrap();
        assert!(r.stalled);
        assert_eq!(r.tx, 0);
        assert!(!r.passed(100.0));
    }

    #[test]
    fn bad_specs_are_refused() {
        let clock = VirtualClock::new(0);
        let mut port = Loopback::hairpin(&LoopbackConfig::default());
        let s = TrialSpec {
            tx_queues: vec![1],
            ..spec(1e6, 10)
        };
        assert!(run_trial(&mut traffic(64), Ports::Same(&mut port), &clock, &s).is_err());
        let s = TrialSpec {
            rx_queues: vec![3],
            ..spec(1e6, 10)
        };
        assert!(run_trial(&mut traffic(64), Ports::Same(&mut port), &clock, &s).is_err());
        assert!(run_trial(
            &mut traffic(64),
            Ports::Same(&mut port),
            &clock,
            &spec(0.0, 10)
        )
        .is_err());
    }

    #[test]
    fn real_clock_trial_measures_real_latency() {
        let clock = MonotonicClock;
        let mut port = Loopback::hairpin(&LoopbackConfig::default());
        let r = run_trial(
            &mut traffic(256),
            Ports::Same(&mut port),
            &clock,
            &spec(200_000.0, 2_000),
        )
        .unwrap();
        assert_eq!((r.tx, r.rx), (2_000, 2_000));
        let l = r.latency;
        assert!(l.min_ns <= l.p50_ns && l.p50_ns <= l.p99_ns && l.p99_ns <= l.max_ns);
        assert!(l.max_ns < 1_000_000_000, "{l:?}");
        // Other tests share the CPUs, so only the upper bound is certain: pacing never
        // runs ahead of the offered rate.
        assert!(
            r.achieved_pps > 0.0 && r.achieved_pps <= 200_000.0 * 1.01,
            "{}",
            r.achieved_pps
        );
    }

    /// 3 source ports and IMIX: the sequence repeats every 12 frames, so a loopback
    /// queue of 256 fixed frames holds 21 cycles, 252 frames.
    fn three_flows_imix() -> Traffic {
        let spec = FlowSpec {
            src_port: "1000-1002".parse().unwrap(),
            ..FlowSpec::default()
        };
        Traffic::new(&spec, &FrameSize::imix()).unwrap()
    }

    /// Everything `queue` of `port` has received.
    fn received(port: &mut Loopback, queue: u16) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while port.recv(queue, 64, &mut |f| got.push(f.to_vec())) > 0 {}
        got
    }

    /// A frame's headers up to the UDP length: flow and size, not the signature.
    fn headers(f: &[u8]) -> &[u8] {
        &f[..14 + 20 + 6]
    }

    #[test]
    fn tx_only_sends_what_run_trial_would_from_fixed_frames() {
        let clock = VirtualClock::new(0);
        let (mut a, mut b) = Loopback::pair(&LoopbackConfig::default());
        let mut t = three_flows_imix();
        let s = spec(1e6, 1_000);
        let (r, mode) = run_tx_only(&mut t, &mut a, &clock, &s).unwrap();
        assert_eq!(mode, TxOnlyMode::Fixed { frames: 252 });
        assert_eq!((r.tx, r.rx, r.lost, r.tx_short), (1_000, 0, 1_000, 0));
        assert_eq!(r.frame_size, "imix");
        assert!((r.achieved_pps - 1e6).abs() < 1.0, "{}", r.achieved_pps);
        let got = received(&mut b, 0);
        assert_eq!(got.len(), 1_000, "exactly --count frames");

        // Frame k is the fixed frame of buffer k mod 252: what `fill` writes with that
        // sequence number and no timestamp.
        let mut fresh = three_flows_imix();
        let mut buf = vec![0u8; MAX_WIRE];
        for (k, f) in got.iter().enumerate() {
            if k % 252 == 0 {
                fresh.rewind();
            }
            let st = Stamp {
                stream: s.stream,
                queue: 0,
                seq: (k % 252) as u64,
                ts: 0,
            };
            let n = fresh.fill(&mut buf, &st);
            assert_eq!(f[..], buf[..n], "frame {k}");
        }

        // The flows and sizes in the same order as frames built one by one.
        let (mut c, mut d) = Loopback::pair(&LoopbackConfig::default());
        let ports = Ports::Split {
            tx: &mut c,
            rx: &mut NullPort,
        };
        run_trial(&mut three_flows_imix(), ports, &clock, &s).unwrap();
        let built = received(&mut d, 0);
        assert_eq!(built.len(), 1_000);
        for (k, (f, g)) in got.iter().zip(&built).enumerate() {
            assert_eq!(headers(f), headers(g), "frame {k}");
        }
        // Over the 252 buffers, each flow a third, the sizes 7:4:1.
        let (mut flows, mut sizes) = (BTreeMap::new(), BTreeMap::new());
        for f in &got[..252] {
            *flows.entry(u16::from_be_bytes([f[34], f[35]])).or_insert(0) += 1;
            *sizes.entry(f.len()).or_insert(0) += 1;
        }
        assert_eq!(flows, BTreeMap::from([(1000, 84), (1001, 84), (1002, 84)]));
        assert_eq!(sizes, BTreeMap::from([(60, 147), (590, 84), (1514, 21)]));
    }

    #[test]
    fn tx_only_paces_counts_and_spreads_over_queues() {
        let clock = VirtualClock::new(5_000);
        let cfg = LoopbackConfig {
            queues: 2,
            ..LoopbackConfig::default()
        };
        let (mut a, mut b) = Loopback::pair(&cfg);
        let s = TrialSpec {
            tx_queues: vec![0, 1, 1],
            length: Length::Duration(Duration::from_millis(20)),
            ..spec(250_000.0, 0)
        };
        let mut t = traffic(64);
        let (r, mode) = run_tx_only(&mut t, &mut a, &clock, &s).unwrap();
        assert_eq!(mode, TxOnlyMode::Fixed { frames: 256 });
        // 20 ms at 250k pps, every frame on time.
        assert_eq!(r.tx, 5_000);
        assert!(
            (r.achieved_pps - 250_000.0).abs() < 1.0,
            "{}",
            r.achieved_pps
        );
        assert_eq!(clock.now_ns(), 5_000 + 4_999 * 4_000);
        let (q0, q1) = (received(&mut b, 0), received(&mut b, 1));
        assert_eq!(q0.len() + q1.len(), 5_000);
        // Queue 1 has two turns of three.
        assert!(q1.len() > q0.len() * 3 / 2, "{} {}", q0.len(), q1.len());
        for (q, frames) in [(0, &q0), (1, &q1)] {
            for (k, f) in frames.iter().enumerate() {
                let sig = parse(f).unwrap();
                assert_eq!((sig.queue, sig.seq), (q, (k % 256) as u64));
            }
        }
        // A count that ends mid-burst, at max rate.
        let (mut a, mut b) = Loopback::pair(&cfg);
        let s = TrialSpec {
            tx_queues: vec![0, 1],
            ..spec(1e12, 1_001)
        };
        let (r, _) = run_tx_only(&mut t, &mut a, &clock, &s).unwrap();
        assert_eq!(r.tx, 1_001);
        assert_eq!(received(&mut b, 0).len() + received(&mut b, 1).len(), 1_001);
    }

    #[test]
    fn tx_only_builds_frames_when_a_cycle_does_not_fit() {
        let clock = VirtualClock::new(0);
        let many = FlowSpec {
            src_port: "1-300".parse().unwrap(),
            ..FlowSpec::default()
        };
        let s = spec(1e6, 600);
        for (capacity, cycle) in [(256, 300), (0, 1)] {
            let cfg = LoopbackConfig {
                fixed_capacity: capacity,
                ..LoopbackConfig::default()
            };
            let flows = if capacity == 0 {
                FlowSpec::default()
            } else {
                many.clone()
            };
            let mut t = Traffic::new(&flows, &FrameSize::Fixed(64)).unwrap();
            let (mut a, mut b) = Loopback::pair(&cfg);
            let (r, mode) = run_tx_only(&mut t, &mut a, &clock, &s).unwrap();
            assert_eq!(
                mode,
                TxOnlyMode::Built {
                    cycle: Some(cycle),
                    capacity
                }
            );
            assert_eq!(r.tx, 600);
            let got = received(&mut b, 0);
            let seqs: Vec<u64> = got.iter().map(|f| parse(f).unwrap().seq).collect();
            assert_eq!(seqs, (0..600).collect::<Vec<_>>(), "built one by one");
        }
    }

    #[test]
    fn tx_only_refuses_bad_specs() {
        let clock = VirtualClock::new(0);
        let (mut a, _b) = Loopback::pair(&LoopbackConfig::default());
        let s = TrialSpec {
            tx_queues: vec![1],
            ..spec(1e6, 10)
        };
        assert!(run_tx_only(&mut traffic(64), &mut a, &clock, &s).is_err());
        assert!(run_tx_only(&mut traffic(64), &mut a, &clock, &spec(0.0, 10)).is_err());
    }

    #[test]
    fn a_trial_the_generator_could_not_drive_does_not_pass() {
        let r = TrialResult {
            offered_pps: 1e6,
            achieved_pps: 0.9e6,
            tx: 900_000,
            rx: 900_000,
            ..TrialResult::default()
        };
        assert!(!r.kept_up());
        assert!(
            !r.passed(0.0),
            "no loss, but only 90% of the offered rate went out"
        );
        let ok = TrialResult {
            achieved_pps: 0.995e6,
            ..r
        };
        assert!(ok.passed(0.0));
    }
}
