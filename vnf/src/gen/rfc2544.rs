//! The RFC 2544 procedures: throughput (26.1), latency (26.2), frame loss rate (26.3) and
//! back-to-back frames (26.4), run per frame size through a `TrialRunner`.

use std::time::Duration;

use serde::Serialize;

use super::frame::FrameSize;
use super::rate::{line_pps, DEFAULT_LINE_BPS, WIRE_OVERHEAD};
use super::run::{Length, TrialResult, TrialRunner};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tests {
    pub throughput: bool,
    pub latency: bool,
    pub frame_loss: bool,
    pub back_to_back: bool,
}

impl Tests {
    pub const ALL: Tests = Tests {
        throughput: true,
        latency: true,
        frame_loss: true,
        back_to_back: true,
    };
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rfc2544Config {
    pub sizes: Vec<FrameSize>,
    pub line_bps: f64,
    /// The throughput search runs between these shares of the line rate.
    pub min_pct: f64,
    pub max_pct: f64,
    /// The search stops when its bounds are this close, in percent of the line rate.
    pub resolution_pct: f64,
    /// Percent of the frames sent that a trial may lose and still pass.
    pub loss_tolerance_pct: f64,
    pub trial: Length,
    pub latency_trial: Length,
    pub frame_loss_trial: Length,
    /// Percent of line rate, in the order tried.
    pub frame_loss_steps: Vec<f64>,
    /// The frame loss test ends after this many lossless steps in a row (RFC 2544 26.3
    /// says two); 0 runs every step.
    pub frame_loss_stop_after: u32,
    /// The longest burst tried, as time at `max_pct` of the line (RFC 2544 26.4: at least
    /// two seconds).
    pub back_to_back_max: Duration,
    /// The burst search stops when its bounds are this close, in percent of the upper one
    /// (relative, because the answer may be thousands of times shorter than the longest).
    pub back_to_back_resolution_pct: f64,
    pub tests: Tests,
}

impl Default for Rfc2544Config {
    /// RFC 2544's sizes and steps. Trials last 10 s rather than the RFC's 60 s, so that a
    /// full run takes minutes, not hours; pass longer ones for a formal report.
    fn default() -> Rfc2544Config {
        let ten = Length::Duration(Duration::from_secs(10));
        Rfc2544Config {
            sizes: [64, 128, 256, 512, 1024, 1280, 1518]
                .into_iter()
                .map(FrameSize::Fixed)
                .collect(),
            line_bps: DEFAULT_LINE_BPS,
            min_pct: 0.0,
            max_pct: 100.0,
            resolution_pct: 0.5,
            loss_tolerance_pct: 0.0,
            trial: ten,
            latency_trial: ten,
            frame_loss_trial: ten,
            frame_loss_steps: (1..=10).rev().map(|i| f64::from(i) * 10.0).collect(),
            frame_loss_stop_after: 2,
            back_to_back_max: Duration::from_secs(2),
            back_to_back_resolution_pct: 1.0,
            tests: Tests::ALL,
        }
    }
}

impl Rfc2544Config {
    pub fn validate(&self) -> Result<(), String> {
        if self.sizes.is_empty() {
            return Err("no frame sizes".into());
        }
        for s in &self.sizes {
            s.validate()?;
        }
        if !(self.line_bps > 0.0 && self.line_bps.is_finite()) {
            return Err(format!("bad line rate {} b/s", self.line_bps));
        }
        if !(0.0 <= self.min_pct && self.min_pct < self.max_pct && self.max_pct <= 100.0) {
            return Err(format!(
                "bad rate bounds {}%..{}%",
                self.min_pct, self.max_pct
            ));
        }
        if !(self.resolution_pct > 0.0 && self.back_to_back_resolution_pct > 0.0) {
            return Err("resolutions must be above zero".into());
        }
        if !(0.0..100.0).contains(&self.loss_tolerance_pct) {
            return Err(format!("bad loss tolerance {}%", self.loss_tolerance_pct));
        }
        if self
            .frame_loss_steps
            .iter()
            .any(|s| !(*s > 0.0 && *s <= 100.0))
        {
            return Err("frame loss steps must be in (0, 100] percent".into());
        }
        Ok(())
    }

    fn search_steps(span: f64, resolution: f64) -> u32 {
        if span <= resolution {
            0
        } else {
            (span / resolution).log2().ceil() as u32
        }
    }

    /// An estimate of the trials a run takes, for progress bars: searches may end early.
    pub fn planned_trials(&self) -> u32 {
        let t = &self.tests;
        let mut per_size = 0;
        if t.throughput {
            let span = self.max_pct - self.min_pct;
            per_size += 1 + Self::search_steps(span, self.resolution_pct);
        }
        if t.latency {
            per_size += 1;
        }
        if t.frame_loss {
            per_size += self.frame_loss_steps.len() as u32;
        }
        if t.back_to_back {
            per_size += 1 + Self::search_steps(100.0, self.back_to_back_resolution_pct);
        }
        per_size * self.sizes.len() as u32
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    Throughput,
    Latency,
    FrameLoss,
    BackToBack,
}

impl Test {
    pub fn name(&self) -> &'static str {
        match self {
            Test::Throughput => "throughput",
            Test::Latency => "latency",
            Test::FrameLoss => "frame loss",
            Test::BackToBack => "back-to-back",
        }
    }
}

/// Reported after every trial.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// Counting from 1.
    pub trial: u32,
    pub planned: u32,
    pub test: Test,
    pub frame_size: &'a str,
    pub pps: f64,
    pub pct_of_line: f64,
    /// For back-to-back trials, the burst length.
    pub burst: Option<u64>,
    pub passed: bool,
    pub result: &'a TrialResult,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Throughput {
    /// 0 when no rate down to the minimum passed.
    pub pps: f64,
    pub pct_of_line: f64,
    /// Frame bits per second (with FCS).
    pub bps: f64,
    /// Line bits per second, counting preamble and inter-frame gap.
    pub line_bps_used: f64,
    /// The passing trial at `pps`.
    pub trial: Option<TrialResult>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LossPoint {
    pub pct_of_line: f64,
    pub offered_pps: f64,
    pub tx: u64,
    pub rx: u64,
    pub loss_pct: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackToBack {
    /// The longest burst sent without loss; 0 when none passed.
    pub frames: u64,
    pub pps: f64,
    pub longest_tried: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SizeReport {
    pub frame_size: String,
    /// With FCS, after raising too-small sizes; the mean for a mix.
    pub mean_frame_size: f64,
    pub line_pps: f64,
    pub throughput: Option<Throughput>,
    pub latency: Option<TrialResult>,
    pub frame_loss: Vec<LossPoint>,
    pub back_to_back: Option<BackToBack>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rfc2544Report {
    pub line_bps: f64,
    pub loss_tolerance_pct: f64,
    pub resolution_pct: f64,
    pub trials: u32,
    pub sizes: Vec<SizeReport>,
}

struct Session<'a> {
    cfg: &'a Rfc2544Config,
    runner: &'a mut dyn TrialRunner,
    progress: &'a mut dyn FnMut(&Progress),
    trials: u32,
    planned: u32,
    stream: u16,
}

impl Session<'_> {
    /// Every trial gets its own stream id, so stragglers of the one before are not
    /// mistaken for this one's frames.
    fn trial(
        &mut self,
        test: Test,
        size: &FrameSize,
        label: &str,
        line: f64,
        pps: f64,
        length: Length,
    ) -> Result<(bool, TrialResult), String> {
        self.stream = self.stream.wrapping_add(1);
        let r = self.runner.trial(size, pps, length, self.stream)?;
        let passed = r.passed(self.cfg.loss_tolerance_pct);
        self.trials += 1;
        (self.progress)(&Progress {
            trial: self.trials,
            planned: self.planned.max(self.trials),
            test,
            frame_size: label,
            pps,
            pct_of_line: pps / line * 100.0,
            burst: match (test, length) {
                (Test::BackToBack, Length::Frames(n)) => Some(n),
                _ => None,
            },
            passed,
            result: &r,
        });
        Ok((passed, r))
    }

    fn throughput(
        &mut self,
        size: &FrameSize,
        label: &str,
        line: f64,
    ) -> Result<Throughput, String> {
        let cfg = self.cfg;
        let (mut lo, mut hi) = (line * cfg.min_pct / 100.0, line * cfg.max_pct / 100.0);
        let resolution = line * cfg.resolution_pct / 100.0;
        let mut best: Option<(f64, TrialResult)> = None;
        // A device that forwards at the top rate costs one trial.
        let (ok, r) = self.trial(Test::Throughput, size, label, line, hi, cfg.trial)?;
        if ok {
            best = Some((hi, r));
        } else {
            while hi - lo > resolution {
                let mid = (lo + hi) / 2.0;
                let (ok, r) = self.trial(Test::Throughput, size, label, line, mid, cfg.trial)?;
                if ok {
                    lo = mid;
                    best = Some((mid, r));
                } else {
                    hi = mid;
                }
            }
            // The lower bound was assumed; check it before reporting it.
            if best.is_none() && lo > 0.0 {
                let (ok, r) = self.trial(Test::Throughput, size, label, line, lo, cfg.trial)?;
                if ok {
                    best = Some((lo, r));
                }
            }
        }
        let (pps, trial) = match best {
            Some((pps, r)) => (pps, Some(r)),
            None => (0.0, None),
        };
        let mean = trial.as_ref().map_or(0.0, |t| t.mean_frame_size);
        Ok(Throughput {
            pps,
            pct_of_line: pps / line * 100.0,
            bps: pps * mean * 8.0,
            line_bps_used: pps * (mean + WIRE_OVERHEAD) * 8.0,
            trial,
        })
    }

    fn frame_loss(
        &mut self,
        size: &FrameSize,
        label: &str,
        line: f64,
    ) -> Result<Vec<LossPoint>, String> {
        let cfg = self.cfg;
        let mut points = Vec::new();
        let mut clean = 0;
        for &pct in &cfg.frame_loss_steps {
            let pps = line * pct / 100.0;
            let (_, r) = self.trial(
                Test::FrameLoss,
                size,
                label,
                line,
                pps,
                cfg.frame_loss_trial,
            )?;
            clean = if r.lost == 0 && r.tx > 0 {
                clean + 1
            } else {
                0
            };
            points.push(LossPoint {
                pct_of_line: pct,
                offered_pps: pps,
                tx: r.tx,
                rx: r.rx,
                loss_pct: r.loss_pct,
            });
            if cfg.frame_loss_stop_after > 0 && clean >= cfg.frame_loss_stop_after {
                break;
            }
        }
        Ok(points)
    }

    fn back_to_back(
        &mut self,
        size: &FrameSize,
        label: &str,
        line: f64,
    ) -> Result<BackToBack, String> {
        let cfg = self.cfg;
        let pps = line * cfg.max_pct / 100.0;
        let longest = ((pps * cfg.back_to_back_max.as_secs_f64()).ceil() as u64).max(1);
        let burst = |s: &mut Self, n: u64| {
            s.trial(Test::BackToBack, size, label, line, pps, Length::Frames(n))
                .map(|(ok, _)| ok)
        };
        let frames = if burst(self, longest)? {
            longest
        } else {
            let (mut lo, mut hi) = (0u64, longest);
            while hi - lo > ((hi as f64 * cfg.back_to_back_resolution_pct / 100.0) as u64).max(1) {
                let mid = lo + (hi - lo) / 2;
                if burst(self, mid)? {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        Ok(BackToBack {
            frames,
            pps,
            longest_tried: longest,
        })
    }
}

/// Runs the configured tests for every frame size. `progress` hears about every trial.
pub fn run(
    cfg: &Rfc2544Config,
    runner: &mut dyn TrialRunner,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Rfc2544Report, String> {
    cfg.validate()?;
    let mut s = Session {
        cfg,
        runner,
        progress,
        trials: 0,
        planned: cfg.planned_trials(),
        stream: 0,
    };
    let mut sizes = Vec::new();
    for size in &cfg.sizes {
        let label = size.label();
        let mean = s.runner.effective_size(size)?;
        let line = line_pps(cfg.line_bps, mean);
        let throughput = match cfg.tests.throughput {
            true => Some(s.throughput(size, &label, line)?),
            false => None,
        };
        let latency = match (cfg.tests.latency, &throughput) {
            (false, _) => None,
            // RFC 2544 26.2 measures at the throughput rate; nothing passed, nothing to do.
            (true, Some(t)) if t.pps == 0.0 => None,
            (true, t) => {
                let pps = t.as_ref().map_or(line * cfg.max_pct / 100.0, |t| t.pps);
                let length = cfg.latency_trial;
                Some(s.trial(Test::Latency, size, &label, line, pps, length)?.1)
            }
        };
        let frame_loss = match cfg.tests.frame_loss {
            true => s.frame_loss(size, &label, line)?,
            false => Vec::new(),
        };
        let back_to_back = match cfg.tests.back_to_back {
            true => Some(s.back_to_back(size, &label, line)?),
            false => None,
        };
        sizes.push(SizeReport {
            frame_size: label,
            mean_frame_size: mean,
            line_pps: line,
            throughput,
            latency,
            frame_loss,
            back_to_back,
        });
    }
    Ok(Rfc2544Report {
        line_bps: cfg.line_bps,
        loss_tolerance_pct: cfg.loss_tolerance_pct,
        resolution_pct: cfg.resolution_pct,
        trials: s.trials,
        sizes,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::flows::{FlowSpec, Traffic};
    use super::super::port::{Loopback, LoopbackConfig, RateLimit};
    use super::super::rate::VirtualClock;
    use super::super::run::{PortRunner, Ports, TrialSpec};
    use super::*;

    /// A device with a fixed forwarding capacity and a queue: a trial above capacity loses
    /// the excess, less what the queue absorbs.
    struct Model {
        capacity_pps: f64,
        queue: f64,
        frames_per_trial: u64,
        log: Vec<(f64, u64)>,
    }

    impl TrialRunner for Model {
        fn effective_size(&mut self, size: &FrameSize) -> Result<f64, String> {
            match size {
                FrameSize::Fixed(s) => Ok(f64::from(*s)),
                FrameSize::Mix(_) => Err("fixed sizes only".into()),
            }
        }

        fn trial(
            &mut self,
            size: &FrameSize,
            pps: f64,
            length: Length,
            _: u16,
        ) -> Result<TrialResult, String> {
            let tx = match length {
                Length::Frames(n) => n,
                Length::Duration(_) => self.frames_per_trial,
            };
            self.log.push((pps, tx));
            let excess = tx as f64 * (1.0 - self.capacity_pps / pps).max(0.0) - self.queue;
            let lost = excess.max(0.0).round() as u64;
            Ok(TrialResult {
                frame_size: size.label(),
                mean_frame_size: self.effective_size(size)?,
                offered_pps: pps,
                // The model's generator always keeps up.
                achieved_pps: pps,
                tx,
                rx: tx - lost,
                lost,
                loss_pct: lost as f64 * 100.0 / tx as f64,
                ..TrialResult::default()
            })
        }
    }

    fn model(capacity_pps: f64) -> Model {
        Model {
            capacity_pps,
            queue: 0.0,
            frames_per_trial: 1_000_000,
            log: Vec::new(),
        }
    }

    fn only(tests: Tests, sizes: &[u32]) -> Rfc2544Config {
        Rfc2544Config {
            sizes: sizes.iter().map(|s| FrameSize::Fixed(*s)).collect(),
            tests,
            ..Rfc2544Config::default()
        }
    }

    const THROUGHPUT: Tests = Tests {
        throughput: true,
        latency: false,
        frame_loss: false,
        back_to_back: false,
    };

    #[test]
    fn throughput_search_converges_to_capacity_per_size() {
        let cfg = only(THROUGHPUT, &[64, 128, 256, 512, 1024, 1280, 1518]);
        let mut m = model(2_000_000.0);
        let mut seen = 0;
        let report = run(&cfg, &mut m, &mut |_| seen += 1).unwrap();
        assert_eq!(report.sizes.len(), 7);
        for s in &report.sizes {
            let t = s.throughput.as_ref().unwrap();
            let line = s.line_pps;
            let truth = line.min(2_000_000.0);
            let res = line * 0.005;
            assert!(
                t.pps <= truth && t.pps >= truth - res,
                "{}: {} vs {truth}",
                s.frame_size,
                t.pps
            );
            assert!((t.pct_of_line - t.pps / line * 100.0).abs() < 1e-9);
            assert_eq!(t.trial.as_ref().unwrap().lost, 0);
        }
        // 1024 bytes and up run at line rate (1.2 Mpps and less): one trial each.
        let big = report
            .sizes
            .iter()
            .filter(|s| s.throughput.as_ref().unwrap().pct_of_line == 100.0);
        assert_eq!(big.count(), 3);
        // The others: the trial at 100 % and eight halvings of 100 % to below 0.5 %.
        assert_eq!(report.trials, 3 + 4 * 9);
        assert_eq!(seen, report.trials);
        // ipgen's opening move: after a failure at the top, half the line rate.
        assert_eq!(m.log[1].0, report.sizes[0].line_pps / 2.0);
    }

    #[test]
    fn tolerance_admits_some_loss() {
        let cfg = Rfc2544Config {
            loss_tolerance_pct: 10.0,
            ..only(THROUGHPUT, &[64])
        };
        let mut m = model(1_000_000.0);
        let r = run(&cfg, &mut m, &mut |_| {}).unwrap();
        let t = r.sizes[0].throughput.as_ref().unwrap();
        // Loss is 1 - C/R, at most 10 % up to R = C / 0.9.
        let truth = 1_000_000.0 / 0.9;
        assert!(
            t.pps <= truth && t.pps > truth - r.sizes[0].line_pps * 0.005,
            "{}",
            t.pps
        );
    }

    #[test]
    fn nothing_passing_above_the_minimum_reports_zero() {
        let cfg = Rfc2544Config {
            min_pct: 10.0,
            ..only(THROUGHPUT, &[1518])
        };
        let mut m = model(1_000.0);
        let r = run(&cfg, &mut m, &mut |_| {}).unwrap();
        let t = r.sizes[0].throughput.as_ref().unwrap();
        assert_eq!((t.pps, t.trial.is_none()), (0.0, true));
        let lowest = m.log.iter().map(|(p, _)| *p).fold(f64::MAX, f64::min);
        assert!(
            (lowest - r.sizes[0].line_pps * 0.1).abs() < 1e-6,
            "the minimum was tried"
        );
    }

    #[test]
    fn latency_runs_at_the_throughput_rate() {
        let tests = Tests {
            latency: true,
            ..THROUGHPUT
        };
        let mut m = model(3_000_000.0);
        let r = run(&only(tests, &[64]), &mut m, &mut |_| {}).unwrap();
        let t = r.sizes[0].throughput.as_ref().unwrap().pps;
        assert_eq!(r.sizes[0].latency.as_ref().unwrap().offered_pps, t);
        assert_eq!(m.log.last().unwrap().0, t);
    }

    #[test]
    fn frame_loss_steps_down_until_two_clean_trials() {
        let tests = Tests {
            throughput: false,
            latency: false,
            frame_loss: true,
            back_to_back: false,
        };
        let cfg = only(tests, &[1518]);
        // 812,744 pps line; capacity 65 % of it.
        let line = line_pps(10e9, 1518.0);
        let mut m = model(line * 0.65);
        let r = run(&cfg, &mut m, &mut |_| {}).unwrap();
        let points = &r.sizes[0].frame_loss;
        let pcts: Vec<f64> = points.iter().map(|p| p.pct_of_line).collect();
        assert_eq!(pcts, [100.0, 90.0, 80.0, 70.0, 60.0, 50.0]);
        assert!(
            (points[0].loss_pct - 35.0).abs() < 0.01,
            "{}",
            points[0].loss_pct
        );
        assert!((points[3].loss_pct - (1.0 - 0.65 / 0.7) * 100.0).abs() < 0.01);
        assert_eq!((points[4].loss_pct, points[5].loss_pct), (0.0, 0.0));
        let all = Rfc2544Config {
            frame_loss_stop_after: 0,
            ..cfg
        };
        let r = run(&all, &mut model(line * 0.65), &mut |_| {}).unwrap();
        assert_eq!(r.sizes[0].frame_loss.len(), 10);
    }

    #[test]
    fn back_to_back_finds_the_longest_burst_the_queue_absorbs() {
        let tests = Tests {
            throughput: false,
            latency: false,
            frame_loss: false,
            back_to_back: true,
        };
        let line = line_pps(10e9, 64.0);
        let mut m = model(line / 2.0);
        m.queue = 10_000.0;
        let r = run(&only(tests, &[64]), &mut m, &mut |_| {}).unwrap();
        let b = r.sizes[0].back_to_back.as_ref().unwrap();
        // Half the burst is forwarded while it lasts, the queue takes 10,000: 20,000.
        let longest = (line * 2.0).ceil() as u64;
        assert_eq!(b.longest_tried, longest);
        assert!(b.frames <= 20_000 && b.frames >= 19_800, "{}", b.frames);
        assert!(m.log.iter().all(|(p, _)| *p == line));
        // A device that keeps up passes the longest burst in one trial.
        let mut fast = model(line);
        let r = run(&only(tests, &[64]), &mut fast, &mut |_| {}).unwrap();
        assert_eq!(r.sizes[0].back_to_back.as_ref().unwrap().frames, longest);
        assert_eq!(fast.log.len(), 1);
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut m = model(1.0);
        for cfg in [
            Rfc2544Config {
                sizes: vec![],
                ..Rfc2544Config::default()
            },
            Rfc2544Config {
                min_pct: 50.0,
                max_pct: 50.0,
                ..Rfc2544Config::default()
            },
            Rfc2544Config {
                resolution_pct: 0.0,
                ..Rfc2544Config::default()
            },
            Rfc2544Config {
                sizes: vec![FrameSize::Fixed(32)],
                ..Rfc2544Config::default()
            },
            Rfc2544Config {
                frame_loss_steps: vec![120.0],
                ..Rfc2544Config::default()
            },
        ] {
            assert!(run(&cfg, &mut m, &mut |_| {}).is_err());
        }
        assert!(m.log.is_empty());
    }

    /// The whole engine: frames, pacing, a loopback that forwards at most `capacity` pps,
    /// receive accounting and the search, on a virtual clock so the outcome is exact.
    #[test]
    fn search_through_a_rate_limited_loopback_finds_its_capacity() {
        let clock = VirtualClock::new(0);
        let capacity = 600_000.0;
        let cfg = LoopbackConfig {
            rate_limit: Some(RateLimit {
                pps: capacity,
                depth: 2.0,
                clock: Arc::new(clock.clone()),
            }),
            ..LoopbackConfig::default()
        };
        let mut port = Loopback::hairpin(&cfg);
        let frames = 5_000;
        let mut runner = PortRunner {
            traffic: Traffic::new(&FlowSpec::default(), &FrameSize::Fixed(64)).unwrap(),
            ports: Ports::Same(&mut port),
            clock: &clock,
            spec: TrialSpec {
                settle: Duration::from_millis(1),
                ..TrialSpec::new(1.0, Length::Frames(0))
            },
        };
        let tests = Tests {
            latency: true,
            ..THROUGHPUT
        };
        let cfg = Rfc2544Config {
            trial: Length::Frames(frames),
            latency_trial: Length::Frames(frames),
            ..only(tests, &[64, 1024, 1518])
        };
        let mut progress = Vec::new();
        let report = run(&cfg, &mut runner, &mut |p| {
            progress.push((p.trial, p.test, p.passed))
        })
        .unwrap();
        for s in &report.sizes {
            let t = s.throughput.as_ref().unwrap();
            let truth = capacity.min(s.line_pps);
            // A trial of n frames above capacity by less than depth/n still passes.
            let slack = truth * 2.0 / frames as f64;
            let res = s.line_pps * 0.005;
            assert!(
                t.pps <= truth + slack && t.pps >= truth - res,
                "{}: {}",
                s.frame_size,
                t.pps
            );
            // The search may end within the slack, where a repeat can lose a frame.
            let l = s.latency.as_ref().unwrap();
            assert_eq!((l.tx, l.offered_pps), (frames, t.pps));
            assert!(l.rx + 2 >= frames && l.latency.count == l.rx);
        }
        // 1518 bytes: line rate is 812,744 pps, above capacity, so it is searched too.
        assert!(report.sizes[2].throughput.as_ref().unwrap().pct_of_line < 100.0);
        assert_eq!(progress.len() as u32, report.trials);
        assert!(progress
            .iter()
            .enumerate()
            .all(|(i, p)| p.0 == i as u32 + 1));
        assert!(progress.iter().any(|p| !p.2) && progress.iter().any(|p| p.2));
    }
}
