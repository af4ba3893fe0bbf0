//! Progress of long runs on stderr: a bar redrawn in place on a terminal, a plain line
//! per step otherwise (logs and CI keep every step, with no control characters).

use std::io::{IsTerminal, Stderr, Write};

use super::rfc2544::Progress;

const BAR_WIDTH: usize = 30;

pub struct ProgressBar<W: Write> {
    out: W,
    tty: bool,
    drawn: bool,
}

impl ProgressBar<Stderr> {
    pub fn stderr() -> ProgressBar<Stderr> {
        let err = std::io::stderr();
        let tty = err.is_terminal();
        ProgressBar::new(err, tty)
    }
}

impl<W: Write> ProgressBar<W> {
    pub fn new(out: W, tty: bool) -> ProgressBar<W> {
        ProgressBar {
            out,
            tty,
            drawn: false,
        }
    }

    /// Step `done` of `total` finished; `message` says what it was.
    pub fn step(&mut self, done: u32, total: u32, message: &str) {
        let total = total.max(done).max(1);
        // Progress is best effort: a closed stderr must not stop a measurement.
        let _ = if self.tty {
            let filled = (done as usize * BAR_WIDTH) / total as usize;
            self.drawn = true;
            write!(
                self.out,
                "\r\x1b[2K[{}{}] {done}/{total} {message}",
                "#".repeat(filled),
                ".".repeat(BAR_WIDTH - filled)
            )
        } else {
            writeln!(self.out, "[{done}/{total}] {message}")
        };
        let _ = self.out.flush();
    }

    pub fn update(&mut self, p: &Progress) {
        let what = match p.burst {
            Some(n) => format!("burst of {n}"),
            None => format!("{:.2}% of line", p.pct_of_line),
        };
        let verdict = if p.passed { "pass" } else { "loss" };
        let message = format!(
            "{} B {}: {what} ({:.3} Mpps): {verdict}, {} sent, {} lost",
            p.frame_size,
            p.test.name(),
            p.pps / 1e6,
            p.result.tx,
            p.result.lost
        );
        self.step(p.trial, p.planned, &message);
    }

    /// Ends the bar's line so that what follows starts on its own.
    pub fn finish(&mut self) {
        if self.tty && self.drawn {
            let _ = writeln!(self.out);
            self.drawn = false;
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::super::rfc2544::Test;
    use super::super::run::TrialResult;
    use super::*;

    fn progress<'a>(r: &'a TrialResult, burst: Option<u64>) -> Progress<'a> {
        Progress {
            trial: 3,
            planned: 12,
            test: if burst.is_some() {
                Test::BackToBack
            } else {
                Test::Throughput
            },
            frame_size: "64",
            pps: 7_440_476.0,
            pct_of_line: 50.0,
            burst,
            passed: false,
            result: r,
        }
    }

    #[test]
    fn plain_output_is_one_line_per_step() {
        let r = TrialResult {
            tx: 1000,
            lost: 7,
            ..TrialResult::default()
        };
        let mut bar = ProgressBar::new(Vec::new(), false);
        bar.update(&progress(&r, None));
        bar.update(&progress(&r, Some(4096)));
        bar.finish();
        let out = String::from_utf8(bar.into_inner()).unwrap();
        assert_eq!(
            out,
            "[3/12] 64 B throughput: 50.00% of line (7.440 Mpps): loss, 1000 sent, 7 lost\n\
             [3/12] 64 B back-to-back: burst of 4096 (7.440 Mpps): loss, 1000 sent, 7 lost\n"
        );
    }

    #[test]
    fn terminal_output_redraws_one_line() {
        let mut bar = ProgressBar::new(Vec::new(), true);
        bar.step(1, 4, "a");
        bar.step(4, 4, "b");
        // More steps than planned (searches are estimates) must not overflow the bar.
        bar.step(6, 4, "c");
        bar.finish();
        let out = String::from_utf8(bar.into_inner()).unwrap();
        let first = format!("\r\x1b[2K[{}{}] 1/4 a", "#".repeat(7), ".".repeat(23));
        assert!(out.starts_with(&first), "{out:?}");
        assert!(out.contains(&format!("[{}] 4/4 b", "#".repeat(30))));
        assert!(out.contains("6/6 c"));
        assert_eq!(out.matches('\n').count(), 1);
        assert!(out.ends_with('\n'));
    }
}
