//! Circulate mode (`vnf gen --circulate`): the generator as a zero-copy loop through a
//! switch, measured the way DPDK testpmd measures one in `io` forwarding after
//! `start tx_first`.
//!
//! Two devices share their packet buffers (`VirtioUser::connect_loop`). Each transmit
//! queue gets `inject` frames at the start; from then on whatever port A receives on
//! queue pair `q` goes out of port B on queue pair `q` and the other way round, as buffer
//! ids moved between rings: no frame is built or copied, and of each only the virtio-net
//! header is touched (`num_buffers` read, then cleared). The rate is what both ports
//! receive together, per second and over the measured window, like the `RX-packets` of
//! testpmd's two ports.
//!
//! Before injecting, each lane is probed with single frames until the switch passes them
//! on: a switch may attach its queues a moment after the vhost-user set-up, and drop what
//! arrives before.
//!
//! Nothing is lost in a closed loop unless something loses it: a switch dropping frames,
//! or the generator dropping one the switch spread over several buffers. So at the end,
//! forwarding stops, what is still going round is counted as it comes back, and
//! `injected - circulating` is the loss. With at most half a ring injected per queue (the
//! command line's limit) and buffers handed back in the order `Lane::forward` explains, a
//! receive ring never runs short of buffers, so the generator itself never causes a
//! drop, however slowly it runs — provided the switch keeps queue pair `q` of one port
//! with queue pair `q` of the other (testpmd does; vnf does when it has as many workers
//! as queue pairs). A switch that moves frames between queue pairs piles them up on
//! some, whose receive rings can then run short; probing fails on such a switch, as the
//! queue pairs it starves never see their probe come back.

use std::time::{Duration, Instant};

use serde::Serialize;
use virtio::user::{Buf, QueuePair, RxQueue, TxQueue};

use super::flows::Traffic;
use super::frame::Stamp;

/// Frames taken from a receive queue per call: testpmd's default burst.
pub const BURST: usize = 32;
/// Loop rounds between looks at the clock, which costs about as much as moving a frame.
const ROUNDS_PER_CLOCK: u32 = 64;
const TICK: Duration = Duration::from_secs(1);
/// Counting what is still in flight at the end stops once nothing has arrived for this
/// long (a switch passes a frame on within microseconds), or after `DRAIN_MAX` in all.
const DRAIN_QUIET: Duration = Duration::from_millis(100);
const DRAIN_MAX: Duration = Duration::from_secs(2);
/// How long the switch may take to pass a first frame on every lane, and how often a
/// lane that has not had one back is probed again.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
const PROBE_EVERY: Duration = Duration::from_millis(10);
/// Probing ends once nothing has arrived for this long.
const PROBE_QUIET: Duration = Duration::from_millis(50);
const PORT_NAMES: [&str; 2] = ["a", "b"];

#[derive(Clone, Debug, PartialEq)]
pub struct CirculateSpec {
    /// Frames put on each transmit queue at the start.
    pub inject: u16,
    /// Forwarding before the measured window opens.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// One direction of one queue pair: frames received on `rx` go out on `tx`, which has the
/// same buffers.
pub struct Lane {
    /// The port `rx` belongs to: 0 for the first `--port`, 1 for the second.
    port: usize,
    queue: u16,
    rx: RxQueue,
    tx: TxQueue,
    /// Buffers the transmit queue is done with; as long as the ring, so that one call
    /// takes all of them back.
    ids: Box<[u16]>,
    bufs: [Buf; BURST],
}

impl Lane {
    /// The lanes of two devices connected with `VirtioUser::connect_loop`: per queue pair,
    /// what `a` receives leaves on `b`'s transmit queue, and the other way round.
    pub fn from_pairs(a: Vec<QueuePair>, b: Vec<QueuePair>) -> Vec<Lane> {
        let mut lanes = Vec::new();
        for (q, (pa, pb)) in a.into_iter().zip(b).enumerate() {
            lanes.push(Lane::new(0, q as u16, pa.rx, pb.tx));
            lanes.push(Lane::new(1, q as u16, pb.rx, pa.tx));
        }
        lanes
    }

    fn new(port: usize, queue: u16, rx: RxQueue, tx: TxQueue) -> Lane {
        Lane {
            port,
            queue,
            ids: vec![0; usize::from(tx.size())].into_boxed_slice(),
            bufs: [Buf::default(); BURST],
            rx,
            tx,
        }
    }

    /// Puts `n` frames on the transmit queue; they come back on this lane's receive queue.
    fn inject(&mut self, traffic: &mut Traffic, n: u16) -> usize {
        let queue = self.queue;
        self.tx.send(usize::from(n), |i, buf| {
            let st = Stamp {
                stream: 1,
                queue,
                seq: i as u64,
                ts: 0,
            };
            traffic.fill(buf, &st)
        })
    }

    /// Sends on what arrived and hands the buffers the switch has sent back to the receive
    /// queue; returns how many frames.
    ///
    /// The order matters. A switch publishes a transmission as done before it delivers
    /// the frame, so taking back completed buffers after the take catches the one each
    /// taken frame left on its way here: every frame in flight then holds at most one
    /// buffer outside the receive ring, and with half a ring injected the switch always
    /// finds a receive buffer. Reclaiming first instead lets a fast switch complete a
    /// frame's buffer, deliver it, and complete its next buffer before the next reclaim:
    /// the receive ring then runs up to a burst short.
    ///
    /// Nothing taken, nothing more to do: the transmit ring is left alone, as testpmd's
    /// io forwarding leaves it. Its used index is the switch's to write; reading it in
    /// every idle round would take the line away from the switch each time, and cost it
    /// a cache miss on every store to it.
    #[inline]
    fn forward(&mut self) -> usize {
        let n = self.rx.take_bufs(&mut self.bufs);
        if n == 0 {
            return 0;
        }
        let m = self.tx.reclaim_bufs(&mut self.ids);
        self.rx.post_bufs(&self.ids[..m]);
        // Fewer only on a broken queue, which `run` checks.
        self.tx.post_bufs(&self.bufs[..n]);
        n
    }

    /// Like `forward`, but what arrives stays here: returns how many frames arrived.
    fn drain(&mut self) -> usize {
        let n = self.tx.reclaim_bufs(&mut self.ids);
        self.rx.post_bufs(&self.ids[..n]);
        let n = self.rx.take_bufs(&mut self.bufs);
        for (id, b) in self.ids.iter_mut().zip(&self.bufs[..n]) {
            *id = b.id;
        }
        self.rx.post_bufs(&self.ids[..n]);
        n
    }

    /// Discards what arrives (reposting its buffers) and gives transmitted buffers back to
    /// `send`: the ordinary, copying use of the queues. Returns how many frames arrived.
    fn discard(&mut self) -> usize {
        self.tx.reclaim();
        self.rx.recv(BURST, |_| {})
    }

    fn broken(&self) -> bool {
        self.rx.broken() || self.tx.broken()
    }

    fn received(&self) -> u64 {
        self.rx.stats().frames
    }

    /// Frames the generator dropped: spread over several buffers, or of a bad used entry.
    fn dropped(&self) -> u64 {
        let s = self.rx.stats();
        s.multi_buffer + s.dropped
    }

    fn bad_used(&self) -> u64 {
        self.rx.stats().bad_used + self.tx.stats().bad_used
    }

    fn name(&self) -> String {
        format!("port {} queue {}", PORT_NAMES[self.port], self.queue)
    }
}

/// Frames received per lane, in lane order.
fn snapshot(lanes: &[Lane]) -> Vec<u64> {
    lanes.iter().map(Lane::received).collect()
}

/// Frames received per port between two snapshots.
fn per_port(lanes: &[Lane], from: &[u64], to: &[u64]) -> [u64; 2] {
    let mut n = [0; 2];
    for ((l, a), b) in lanes.iter().zip(from).zip(to) {
        n[l.port] += b - a;
    }
    n
}

/// One second's figures, as the loop runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    /// Since injection.
    pub at: Duration,
    /// The interval the counts cover.
    pub secs: f64,
    /// Frames received per port.
    pub rx: [u64; 2],
}

impl Tick {
    pub fn line(&self) -> String {
        let mpps = |n: u64| mpps(n, self.secs);
        format!(
            "circulate: t={:.0}s rx_mpps={:.3} a_mpps={:.3} b_mpps={:.3}",
            self.at.as_secs_f64(),
            mpps(self.rx[0] + self.rx[1]),
            mpps(self.rx[0]),
            mpps(self.rx[1])
        )
    }
}

fn mpps(frames: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        frames as f64 / secs / 1e6
    } else {
        0.0
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QueueResult {
    pub port: &'static str,
    pub queue: u16,
    /// Frames received in the measured window.
    pub rx: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CirculateResult {
    /// The measured window.
    pub secs: f64,
    /// Frames both ports received in the window, per second, in millions.
    pub rx_mpps: f64,
    pub rx_a: u64,
    pub rx_b: u64,
    /// Frames put on the transmit queues at the start.
    pub injected: u64,
    /// Frames that came back once forwarding stopped: the ones still going round.
    pub circulating: u64,
    /// `injected - circulating`: lost by the switch, or by the generator (`gen_dropped`).
    pub frames_lost: u64,
    /// Frames the generator dropped: spread over several buffers, which cannot go out as
    /// one, or named by a bad used entry.
    pub gen_dropped: u64,
    /// Used entries the switch got wrong (counted, never followed).
    pub bad_used: u64,
    pub queues: Vec<QueueResult>,
}

impl CirculateResult {
    /// The final line: `key=value` pairs, for scripts.
    pub fn line(&self) -> String {
        format!(
            "circulate: rx_mpps={:.3} rx_a={} rx_b={} secs={:.3} injected={} circulating={} \
             frames_lost={} gen_dropped={} bad_used={}",
            self.rx_mpps,
            self.rx_a,
            self.rx_b,
            self.secs,
            self.injected,
            self.circulating,
            self.frames_lost,
            self.gen_dropped,
            self.bad_used
        )
    }
}

/// Waits for the path, injects, forwards for `spec.warmup + spec.duration` calling `tick`
/// every second, then counts what is still circulating. Errors if the switch does not
/// pass frames on every lane, a queue will not take its injection, or a device breaks a
/// ring.
pub fn run(
    lanes: &mut [Lane],
    traffic: &mut Traffic,
    spec: &CirculateSpec,
    tick: &mut dyn FnMut(&Tick),
) -> Result<CirculateResult, String> {
    await_path(lanes, traffic)?;
    let mut injected = 0;
    for l in lanes.iter_mut() {
        let n = l.inject(traffic, spec.inject);
        if n < usize::from(spec.inject) {
            return Err(format!(
                "{}: only {n} of {} frames could be injected",
                l.name(),
                spec.inject
            ));
        }
        injected += n as u64;
    }
    forward(lanes, spec, injected, tick)
}

/// Sends single frames on each lane until one has come back on every lane, then lets the
/// last ones come back. A switch may start passing frames a moment after its ports
/// attach, and a frame it drops meanwhile would count as lost. Afterwards every buffer is
/// where it started, so the injection finds all of its own free.
fn await_path(lanes: &mut [Lane], traffic: &mut Traffic) -> Result<(), String> {
    let start = Instant::now();
    let mut back = vec![false; lanes.len()];
    let mut probed: Vec<Option<Instant>> = vec![None; lanes.len()];
    while let Some(i) = back.iter().position(|b| !b) {
        let now = Instant::now();
        if now - start > PROBE_TIMEOUT {
            return Err(format!(
                "{}: no frame came back within {PROBE_TIMEOUT:?}; circulating needs a switch \
                 that passes queue pair q of each port to queue pair q of the other",
                lanes[i].name()
            ));
        }
        for ((l, back), probed) in lanes.iter_mut().zip(&mut back).zip(&mut probed) {
            if !*back && probed.is_none_or(|t| now - t >= PROBE_EVERY) {
                l.inject(traffic, 1);
                *probed = Some(now);
            }
            *back |= l.discard() > 0;
        }
        if let Some(l) = lanes.iter().find(|l| l.broken()) {
            return Err(format!("{}: the switch broke a ring", l.name()));
        }
    }
    let mut last = Instant::now();
    while last.elapsed() < PROBE_QUIET {
        if lanes.iter_mut().map(Lane::discard).sum::<usize>() > 0 {
            last = Instant::now();
        }
    }
    Ok(())
}

/// The measured part of `run`: forwards until the window closes, then drains.
fn forward(
    lanes: &mut [Lane],
    spec: &CirculateSpec,
    injected: u64,
    tick: &mut dyn FnMut(&Tick),
) -> Result<CirculateResult, String> {
    let start = Instant::now();
    let (from, to) = (start + spec.warmup, start + spec.warmup + spec.duration);
    let mut window = spec.warmup.is_zero().then(|| (start, snapshot(lanes)));
    let mut last = (start, snapshot(lanes));
    loop {
        for _ in 0..ROUNDS_PER_CLOCK {
            for l in lanes.iter_mut() {
                l.forward();
            }
        }
        let now = Instant::now();
        if let Some(l) = lanes.iter().find(|l| l.broken()) {
            return Err(format!("{}: the switch broke a ring", l.name()));
        }
        if window.is_none() && now >= from {
            window = Some((now, snapshot(lanes)));
        }
        if now - last.0 >= TICK {
            let counts = snapshot(lanes);
            let t = Tick {
                at: now - start,
                secs: (now - last.0).as_secs_f64(),
                rx: per_port(lanes, &last.1, &counts),
            };
            tick(&t);
            last = (now, counts);
        }
        if now >= to {
            break;
        }
    }
    let end = (Instant::now(), snapshot(lanes));
    let (opened, at_open) = window.unwrap_or_else(|| end.clone());
    let circulating = drain(lanes);
    Ok(result(
        lanes,
        injected,
        circulating,
        (opened, &at_open),
        (end.0, &end.1),
    ))
}

/// Stops forwarding and counts the frames that come back.
fn drain(lanes: &mut [Lane]) -> u64 {
    let start = Instant::now();
    let mut last = start;
    let mut got = 0u64;
    loop {
        let n: usize = lanes.iter_mut().map(Lane::drain).sum();
        let now = Instant::now();
        if n > 0 {
            got += n as u64;
            last = now;
        } else if now - last >= DRAIN_QUIET || now - start >= DRAIN_MAX {
            return got;
        }
    }
}

fn result(
    lanes: &[Lane],
    injected: u64,
    circulating: u64,
    (opened, at_open): (Instant, &[u64]),
    (closed, at_close): (Instant, &[u64]),
) -> CirculateResult {
    let secs = (closed - opened).as_secs_f64();
    let [rx_a, rx_b] = per_port(lanes, at_open, at_close);
    CirculateResult {
        secs,
        rx_mpps: mpps(rx_a + rx_b, secs),
        rx_a,
        rx_b,
        injected,
        circulating,
        frames_lost: injected.saturating_sub(circulating),
        gen_dropped: lanes.iter().map(Lane::dropped).sum(),
        bad_used: lanes.iter().map(Lane::bad_used).sum(),
        queues: lanes
            .iter()
            .zip(at_open.iter().zip(at_close))
            .map(|(l, (a, b))| QueueResult {
                port: PORT_NAMES[l.port],
                queue: l.queue,
                rx: b - a,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_key_value_pairs_in_mpps() {
        let t = Tick {
            at: Duration::from_millis(3002),
            secs: 0.5,
            rx: [1_000_000, 3_000_000],
        };
        assert_eq!(
            t.line(),
            "circulate: t=3s rx_mpps=8.000 a_mpps=2.000 b_mpps=6.000"
        );
        let r = CirculateResult {
            secs: 2.0,
            rx_mpps: 25.5,
            rx_a: 25_000_000,
            rx_b: 26_000_000,
            injected: 1024,
            circulating: 1020,
            frames_lost: 4,
            gen_dropped: 1,
            bad_used: 0,
            queues: Vec::new(),
        };
        assert_eq!(
            r.line(),
            "circulate: rx_mpps=25.500 rx_a=25000000 rx_b=26000000 secs=2.000 injected=1024 \
             circulating=1020 frames_lost=4 gen_dropped=1 bad_used=0"
        );
        assert_eq!(mpps(5, 0.0), 0.0);
    }
}
