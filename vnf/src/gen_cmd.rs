//! `vnf gen`: the command line of the traffic generator, and the glue between its engine
//! (`gen`) and our virtio-user frontend, through which it speaks vhost-user to a switch
//! (vnf, DPDK testpmd's vhost PMD, or anything else that serves vhost-user sockets).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use virtio::net::VNET_HDR_LEN;
use virtio::user::queue::FixedTxQueue;
use virtio::user::{Config, RxQueue, TxQueue, VirtioUser};

use crate::gen::circulate::{self, CirculateSpec, Lane};
use crate::gen::flows::{FlowSpec, Traffic};
use crate::gen::frame::{FrameSize, Vlan, FCS_LEN};
use crate::gen::port::FramePort;
use crate::gen::progress::ProgressBar;
use crate::gen::rate::{MonotonicClock, Rate, DEFAULT_LINE_BPS};
use crate::gen::rfc2544::{self, Rfc2544Config};
use crate::gen::run::{run_trial, run_tx_only, Length, PortRunner, Ports, TrialSpec, TxOnlyMode};
use crate::gen::{report, run};

pub const USAGE: &str = "usage: vnf gen [OPTIONS] --port SOCKET [--port SOCKET]
  Sends on the first port and receives on the second (or on the first, if it is the only
  one and the switch sends its frames back). Connects to each socket; with --listen it
  listens instead, for switches whose ports are in client mode.
    --port PATH           vhost-user socket (give one or two)
    --circulate           zero-copy loop, like testpmd's io forwarding after tx_first:
                          inject frames on both ports, then send whatever one port
                          receives out of the other; reports the rate both receive
    --inject N            with --circulate: frames per transmit queue (1..512, default 512)
    --warmup SECS         with --circulate: forward this long before measuring (default 0)
    --listen              listen on the sockets instead of connecting
    --queues N            queue pairs per port (default 1); frames go out on every queue
    --size N|imix         frame size including the FCS, 64..9216 (default 64)
    --rate R              offered rate: pps (1.5M, 200k), N% of the line, or max (default max)
    --line-rate BPS       nominal line rate for % and reports (default 10G)
    --duration SECS       trial length (default 10)
    --count N             send N frames instead of running for a time
    --tx-only             send only; do not receive or count loss. Frames are written
                          once into the transmit buffers and sent again and again
    --src-mac M[-M] --dst-mac M[-M] --src-ip A[-B] --dst-ip A[-B]
    --src-port P[-Q] --dst-port P[-Q] --vlan ID     flows: every combination is sent
    --rfc2544             run RFC 2544 throughput, latency, frame loss and back-to-back
    --sizes 64,128,...    RFC 2544 frame sizes (default 64,128,256,512,1024,1280,1518)
    --loss-tolerance PCT  RFC 2544 loss accepted in a passing trial (default 0)
    --resolution PCT      RFC 2544 throughput search resolution (default 0.5)
    --json FILE --svg FILE  also write the results as JSON and as a chart";

/// Frames `--circulate` injects per transmit queue by default: testpmd's 16 bursts of 32.
const DEFAULT_INJECT: u16 = 512;
/// Descriptors per ring in circulate mode; at most half may be injected, so that a
/// receive ring never runs short (see `gen::circulate`).
const CIRCULATE_RING: u16 = 1024;

struct Options {
    ports: Vec<PathBuf>,
    circulate: bool,
    /// Given explicitly; `DEFAULT_INJECT` otherwise.
    inject: Option<u16>,
    warmup: Option<Duration>,
    listen: bool,
    queues: u16,
    size: FrameSize,
    rate: Option<Rate>,
    line_bps: f64,
    length: Length,
    tx_only: bool,
    flows: FlowSpec,
    rfc2544: bool,
    sizes: Option<Vec<FrameSize>>,
    loss_tolerance: f64,
    resolution: f64,
    json: Option<PathBuf>,
    svg: Option<PathBuf>,
}

fn parse_bps(s: &str) -> Result<f64, String> {
    let (num, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1e3),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1e6),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0 && v.is_finite())
        .map(|v| v * mult)
        .ok_or_else(|| format!("bad line rate {s:?}: want e.g. 10G"))
}

fn parse_size(s: &str) -> Result<FrameSize, String> {
    let size = if s == "imix" {
        FrameSize::imix()
    } else {
        FrameSize::Fixed(s.parse().map_err(|_| format!("bad frame size {s:?}"))?)
    };
    size.validate()?;
    Ok(size)
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        ports: Vec::new(),
        circulate: false,
        inject: None,
        warmup: None,
        listen: false,
        queues: 1,
        size: FrameSize::Fixed(64),
        rate: None,
        line_bps: DEFAULT_LINE_BPS,
        length: Length::Duration(Duration::from_secs(10)),
        tx_only: false,
        flows: FlowSpec::default(),
        rfc2544: false,
        sizes: None,
        loss_tolerance: 0.0,
        resolution: 0.5,
        json: None,
        svg: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .map(String::as_str)
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--port" => o.ports.push(PathBuf::from(value()?)),
            "--listen" => o.listen = true,
            "--tx-only" => o.tx_only = true,
            "--rfc2544" => o.rfc2544 = true,
            "--queues" => {
                o.queues = value()?
                    .parse()
                    .ok()
                    .filter(|q| (1..=16).contains(q))
                    .ok_or("--queues wants 1 to 16")?
            }
            "--size" => o.size = parse_size(value()?)?,
            "--rate" => {
                let v = value()?;
                o.rate = if v == "max" { None } else { Some(v.parse()?) };
            }
            "--line-rate" => o.line_bps = parse_bps(value()?)?,
            "--duration" => {
                let secs: f64 = value()?
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0 && s.is_finite())
                    .ok_or("--duration wants seconds")?;
                o.length = Length::Duration(Duration::from_secs_f64(secs));
            }
            "--circulate" => o.circulate = true,
            "--inject" => {
                o.inject = Some(
                    value()?
                        .parse()
                        .ok()
                        .filter(|n| (1..=CIRCULATE_RING / 2).contains(n))
                        .ok_or(format!(
                            "--inject wants 1 to {} (half a ring of {CIRCULATE_RING})",
                            CIRCULATE_RING / 2
                        ))?,
                )
            }
            "--warmup" => {
                let secs: f64 = value()?
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s >= 0.0 && s.is_finite())
                    .ok_or("--warmup wants seconds")?;
                o.warmup = Some(Duration::from_secs_f64(secs));
            }
            "--count" => {
                o.length = Length::Frames(
                    value()?
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or("--count wants a number of frames")?,
                )
            }
            "--src-mac" => o.flows.src_mac = value()?.parse()?,
            "--dst-mac" => o.flows.dst_mac = value()?.parse()?,
            "--src-ip" => o.flows.src_ip = value()?.parse()?,
            "--dst-ip" => o.flows.dst_ip = value()?.parse()?,
            "--src-port" => o.flows.src_port = value()?.parse()?,
            "--dst-port" => o.flows.dst_port = value()?.parse()?,
            "--vlan" => {
                let id = value()?
                    .parse()
                    .ok()
                    .filter(|id| (1..=4094).contains(id))
                    .ok_or("--vlan wants 1 to 4094")?;
                o.flows.vlan = Some(Vlan { id, pcp: 0 });
            }
            "--sizes" => {
                o.sizes = Some(
                    value()?
                        .split(',')
                        .map(parse_size)
                        .collect::<Result<_, _>>()?,
                )
            }
            "--loss-tolerance" => {
                o.loss_tolerance = value()?
                    .parse()
                    .map_err(|_| "--loss-tolerance wants a percentage")?
            }
            "--resolution" => {
                o.resolution = value()?
                    .parse()
                    .map_err(|_| "--resolution wants a percentage")?
            }
            "--json" => o.json = Some(PathBuf::from(value()?)),
            "--svg" => o.svg = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown option {a}\n{USAGE}")),
        }
    }
    if o.ports.is_empty() || o.ports.len() > 2 {
        return Err(format!("give one or two --port\n{USAGE}"));
    }
    if matches!(o.flows.src_ip.start, IpAddr::V6(_))
        != matches!(o.flows.dst_ip.start, IpAddr::V6(_))
    {
        return Err("--src-ip and --dst-ip must be the same IP version".into());
    }
    if o.rfc2544 && o.tx_only {
        return Err("--rfc2544 needs to receive: drop --tx-only".into());
    }
    check_circulate(&o)?;
    Ok(o)
}

/// `--circulate` runs a closed loop between exactly two ports: there is no rate to offer,
/// no count to send and nothing else to measure.
fn check_circulate(o: &Options) -> Result<(), String> {
    if !o.circulate {
        return match (o.inject, o.warmup) {
            (None, None) => Ok(()),
            _ => Err("--inject and --warmup need --circulate".into()),
        };
    }
    if o.ports.len() != 2 {
        return Err("--circulate needs two --port".into());
    }
    let clash = [
        (o.rfc2544, "--rfc2544"),
        (o.tx_only, "--tx-only"),
        (o.rate.is_some(), "--rate"),
        (matches!(o.length, Length::Frames(_)), "--count"),
        (o.sizes.is_some(), "--sizes"),
    ];
    match clash.iter().find(|(set, _)| *set) {
        Some((_, opt)) => Err(format!("--circulate does not go with {opt}")),
        None => Ok(()),
    }
}

/// A virtio-user device as the generator's port.
struct VirtioPort {
    tx: Vec<Tx>,
    rx: Vec<RxQueue>,
    /// Keeps the vhost-user connection (and so the device) alive.
    _device: VirtioUser,
}

/// A transmit queue of a `VirtioPort`.
enum Tx {
    /// Frames written as they are sent.
    Built(TxQueue),
    /// Frames written once, sent again and again (`FramePort::fix_frames`).
    Fixed(FixedTxQueue),
    /// Turning it into `Fixed` failed, which took the queue.
    Gone,
}

impl VirtioPort {
    fn new(mut device: VirtioUser) -> VirtioPort {
        let (tx, rx) = device
            .take_pairs()
            .into_iter()
            .map(|p| (Tx::Built(p.tx), p.rx))
            .unzip();
        VirtioPort {
            tx,
            rx,
            _device: device,
        }
    }
}

impl FramePort for VirtioPort {
    fn queues(&self) -> u16 {
        self.tx.len() as u16
    }

    fn send(
        &mut self,
        queue: u16,
        max: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> usize {
        match self.tx.get_mut(queue as usize) {
            Some(Tx::Built(q)) => q.send(max, fill),
            _ => 0,
        }
    }

    fn recv(&mut self, queue: u16, max: usize, sink: &mut dyn FnMut(&[u8])) -> usize {
        match self.rx.get_mut(queue as usize) {
            Some(q) => q.recv(max, sink),
            None => 0,
        }
    }

    fn fixed_capacity(&self) -> usize {
        match self.tx.first() {
            Some(Tx::Built(q)) => usize::from(q.size()),
            _ => 0,
        }
    }

    fn fix_frames(
        &mut self,
        queue: u16,
        n: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<(), String> {
        let n = u16::try_from(n).map_err(|_| format!("{n} fixed frames"))?;
        let slot = self
            .tx
            .get_mut(usize::from(queue))
            .ok_or_else(|| format!("no transmit queue {queue}"))?;
        let q = match std::mem::replace(slot, Tx::Gone) {
            Tx::Built(q) => q,
            other => {
                *slot = other;
                return Err(format!(
                    "transmit queue {queue} cannot take fixed frames now"
                ));
            }
        };
        let fixed = q
            .into_fixed(n, |id, buf| fill(usize::from(id), buf))
            .map_err(|e| format!("transmit queue {queue}: {e}"))?;
        *slot = Tx::Fixed(fixed);
        Ok(())
    }

    fn send_fixed(&mut self, queue: u16, max: usize) -> usize {
        match self.tx.get_mut(usize::from(queue)) {
            Some(Tx::Fixed(q)) => q.send(max),
            _ => 0,
        }
    }
}

fn largest(size: &FrameSize) -> u32 {
    match size {
        FrameSize::Fixed(s) => *s,
        FrameSize::Mix(m) => m.iter().map(|(s, _)| *s).max().unwrap_or(64),
    }
}

fn open(path: &PathBuf, o: &Options, max_frame: u32) -> Result<VirtioPort, String> {
    let mut cfg = Config::new(o.queues);
    // One buffer per transmitted frame: room for the largest one and the 12-byte header.
    cfg.buf_size = (max_frame + 12).max(2048).next_multiple_of(64);
    let dev = if o.listen {
        VirtioUser::accept_with(path, &cfg)
    } else {
        VirtioUser::connect_with(path, &cfg)
    };
    let dev = dev.map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(VirtioPort::new(dev))
}

/// `vnf gen --circulate`: two devices sharing their buffers, frames going round.
fn circulate(o: &Options) -> Result<(), String> {
    let Length::Duration(duration) = o.length else {
        return Err("--circulate runs for a --duration, not a --count".into());
    };
    let spec = CirculateSpec {
        inject: o.inject.unwrap_or(DEFAULT_INJECT),
        warmup: o.warmup.unwrap_or(Duration::ZERO),
        duration,
    };
    let mut traffic = Traffic::new(&o.flows, &o.size)?;
    let mut cfg = Config::new(o.queues);
    cfg.queue_size = CIRCULATE_RING;
    // Buffers only ever hold the injected frames, plus room for tags a switch may push;
    // small buffers keep the set that circulates within few pages.
    let wire = largest(&o.size) as usize - FCS_LEN;
    cfg.buf_size = (VNET_HDR_LEN + wire + 64).next_multiple_of(64) as u32;
    let (a, b) = (&o.ports[0], &o.ports[1]);
    let devices = if o.listen {
        VirtioUser::accept_loop(a, b, &cfg, spec.inject)
    } else {
        VirtioUser::connect_loop(a, b, &cfg, spec.inject)
    };
    // Errors name the socket they concern.
    let (mut da, mut db) = devices.map_err(|e| format!("vnf gen --circulate: {e}"))?;
    let mut lanes = Lane::from_pairs(da.take_pairs(), db.take_pairs());
    let r = circulate::run(&mut lanes, &mut traffic, &spec, &mut |t| {
        println!("{}", t.line())
    })?;
    println!("{}", r.line());
    if r.frames_lost > 0 {
        eprintln!(
            "vnf gen: {} of {} frames were lost ({} by the generator)",
            r.frames_lost, r.injected, r.gen_dropped
        );
    }
    let json = serde_json::to_string_pretty(&r).unwrap_or_default() + "\n";
    write_out(&o.json, &json)?;
    // The devices stay connected until the count is done.
    drop((da, db));
    Ok(())
}

pub fn main(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    if o.circulate {
        return circulate(&o);
    }
    let sizes = o.sizes.clone().unwrap_or_else(|| {
        if o.rfc2544 {
            Rfc2544Config::default().sizes
        } else {
            vec![o.size.clone()]
        }
    });
    let max_frame = sizes.iter().map(largest).max().unwrap_or(64);
    let mut tx = open(&o.ports[0], &o, max_frame)?;
    let mut rx = match o.ports.get(1) {
        Some(p) => Some(open(p, &o, max_frame)?),
        None => None,
    };
    let queues: Vec<u16> = (0..o.queues).collect();
    let traffic = Traffic::new(&o.flows, &o.size)?;
    if o.tx_only {
        return tx_only(&o, traffic, &mut tx, queues);
    }
    let ports = match rx.as_mut() {
        Some(rx) => Ports::Split { tx: &mut tx, rx },
        None => Ports::Same(&mut tx),
    };

    if o.rfc2544 {
        let cfg = Rfc2544Config {
            sizes,
            line_bps: o.line_bps,
            resolution_pct: o.resolution,
            loss_tolerance_pct: o.loss_tolerance,
            trial: o.length,
            latency_trial: o.length,
            frame_loss_trial: o.length,
            ..Rfc2544Config::default()
        };
        cfg.validate()?;
        let mut runner = PortRunner {
            traffic,
            ports,
            clock: &MonotonicClock,
            spec: TrialSpec {
                tx_queues: queues,
                ..TrialSpec::new(1.0, Length::Frames(0))
            },
        };
        let mut bar = ProgressBar::stderr();
        let rep = rfc2544::run(&cfg, &mut runner, &mut |p| bar.update(p))?;
        bar.finish();
        print!("{}", report::table(&rep));
        write_out(&o.json, &report::json(&rep))?;
        write_out(&o.svg, &report::svg(&rep))?;
        return Ok(());
    }

    let mut traffic = traffic;
    let spec = trial_spec(&o, queues);
    let result = run_trial(&mut traffic, ports, &MonotonicClock, &spec)?;
    print!("{}", report::trial_table(std::slice::from_ref(&result)));
    write_out(&o.json, &trial_json(&result))?;
    Ok(())
}

/// The one trial of a run without `--rfc2544`.
fn trial_spec(o: &Options, queues: Vec<u16>) -> TrialSpec {
    let pps = match o.rate {
        Some(r) => r.pps(o.line_bps, f64::from(largest(&o.size))),
        // "As fast as the port takes them": far above anything a core can send.
        None => 1e12,
    };
    TrialSpec {
        tx_queues: queues,
        ..TrialSpec::new(pps, o.length)
    }
}

/// `--tx-only`: frames written once into the transmit buffers and sent again and again
/// (see `run::run_tx_only`), or built one by one when the flows do not fit.
fn tx_only(
    o: &Options,
    mut traffic: Traffic,
    port: &mut VirtioPort,
    queues: Vec<u16>,
) -> Result<(), String> {
    let spec = TrialSpec {
        // No receiver: nothing to wait for after the last frame.
        settle: Duration::ZERO,
        ..trial_spec(o, queues)
    };
    let (result, mode) = run_tx_only(&mut traffic, port, &MonotonicClock, &spec)?;
    if let TxOnlyMode::Built { cycle, capacity } = mode {
        let cycle = cycle.map_or("more than 2^64".into(), |c| c.to_string());
        eprintln!(
            "vnf gen: {} flows of size {} repeat every {cycle} frames, more than the \
             {capacity} buffers of a transmit queue hold: building every frame as it goes \
             out instead of writing them once, which is slower",
            traffic.flow_count(),
            traffic.size().label()
        );
    }
    print!("{}", report::trial_table(std::slice::from_ref(&result)));
    write_out(&o.json, &trial_json(&result))?;
    Ok(())
}

fn trial_json(r: &run::TrialResult) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default() + "\n"
}

fn write_out(path: &Option<PathBuf>, text: &str) -> Result<(), String> {
    match path {
        Some(p) => std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_a_full_command_line() {
        let o = parse(&args(
            "--port a.sock --port b.sock --queues 2 --size imix --rate 50% --line-rate 25G \
             --count 1000 --src-ip 10.0.0.1-10.0.0.9 --dst-port 100-199 --vlan 7",
        ))
        .unwrap();
        assert_eq!(o.ports.len(), 2);
        assert_eq!(o.queues, 2);
        assert_eq!(o.size, FrameSize::imix());
        assert_eq!(o.rate, Some(Rate::PercentOfLine(50.0)));
        assert_eq!(o.line_bps, 25e9);
        assert_eq!(o.length, Length::Frames(1000));
        assert_eq!(o.flows.src_ip.count, 9);
        assert_eq!(o.flows.dst_port.count, 100);
        assert_eq!(o.flows.vlan.map(|v| v.id), Some(7));
    }

    #[test]
    fn parses_circulate() {
        let o = parse(&args(
            "--port a --port b --circulate --queues 2 --inject 100 --warmup 1.5 --duration 3",
        ))
        .unwrap();
        assert!(o.circulate);
        assert_eq!((o.queues, o.inject), (2, Some(100)));
        assert_eq!(o.warmup, Some(Duration::from_millis(1500)));
        assert_eq!(o.length, Length::Duration(Duration::from_secs(3)));
        let o = parse(&args("--port a --port b --circulate --size 128 --listen")).unwrap();
        assert_eq!((o.inject, o.warmup, o.listen), (None, None, true));
    }

    #[test]
    fn rejects_bad_circulate_command_lines() {
        for bad in [
            "--port a --circulate",
            "--port a --port b --circulate --rate 1M",
            "--port a --port b --circulate --count 10",
            "--port a --port b --circulate --rfc2544",
            "--port a --port b --circulate --tx-only",
            "--port a --port b --circulate --sizes 64,128",
            "--port a --port b --circulate --inject 0",
            "--port a --port b --circulate --inject 513",
            "--port a --port b --circulate --warmup -1",
            "--port a --port b --inject 10",
            "--port a --port b --warmup 1",
        ] {
            assert!(parse(&args(bad)).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn rejects_bad_command_lines() {
        for bad in [
            "",
            "--port a --port b --port c",
            "--port a --queues 0",
            "--port a --size 63",
            "--port a --rate fast",
            "--port a --vlan 4095",
            "--port a --rfc2544 --tx-only",
            "--port a --src-ip 10.0.0.1 --dst-ip ::1",
            "--port a --bogus",
            "--port",
        ] {
            assert!(parse(&args(bad)).is_err(), "accepted {bad:?}");
        }
    }
}
