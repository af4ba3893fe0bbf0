//! Results as an aligned table, JSON and an SVG chart (drawn by hand: a few rectangles
//! and lines do not need a plotting crate).

use std::fmt::Write;

use super::rfc2544::Rfc2544Report;
use super::run::TrialResult;

/// Columns after the first are right-aligned: they hold numbers.
fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i == 0 {
                l.push_str(cell);
                l.push_str(&" ".repeat(pad));
            } else {
                l.push_str("  ");
                l.push_str(&" ".repeat(pad));
                l.push_str(cell);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut rule.iter().map(String::as_str));
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn us(ns: f64) -> String {
    format!("{:.2}", ns / 1000.0)
}

/// The RFC 2544 results: throughput, latency and back-to-back per size, then frame loss.
pub fn table(r: &Rfc2544Report) -> String {
    let headers = [
        "frame",
        "line Mpps",
        "Mpps",
        "% line",
        "Mb/s",
        "lat min us",
        "lat mean us",
        "lat p99 us",
        "lat max us",
        "b2b frames",
    ];
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = r
        .sizes
        .iter()
        .map(|s| {
            let mut row = vec![s.frame_size.clone(), format!("{:.3}", s.line_pps / 1e6)];
            match &s.throughput {
                Some(t) => row.extend([
                    format!("{:.3}", t.pps / 1e6),
                    format!("{:.2}", t.pct_of_line),
                    format!("{:.1}", t.bps / 1e6),
                ]),
                None => row.extend([dash(), dash(), dash()]),
            }
            match &s.latency {
                Some(l) => row.extend([
                    us(l.latency.min_ns as f64),
                    us(l.latency.mean_ns),
                    us(l.latency.p99_ns as f64),
                    us(l.latency.max_ns as f64),
                ]),
                None => row.extend([dash(), dash(), dash(), dash()]),
            }
            row.push(
                s.back_to_back
                    .as_ref()
                    .map_or_else(dash, |b| b.frames.to_string()),
            );
            row
        })
        .collect();
    let mut out = render(&headers, &rows);

    // Sizes may stop stepping at different rates, so the columns are the union.
    let mut steps: Vec<f64> = Vec::new();
    for p in r.sizes.iter().flat_map(|s| &s.frame_loss) {
        if !steps.contains(&p.pct_of_line) {
            steps.push(p.pct_of_line);
        }
    }
    if !steps.is_empty() {
        let names: Vec<String> = std::iter::once("loss % at".to_string())
            .chain(steps.iter().map(|s| format!("{s}%")))
            .collect();
        let headers: Vec<&str> = names.iter().map(String::as_str).collect();
        let rows: Vec<Vec<String>> = r
            .sizes
            .iter()
            .map(|s| {
                let mut row = vec![s.frame_size.clone()];
                for step in &steps {
                    let p = s.frame_loss.iter().find(|p| p.pct_of_line == *step);
                    row.push(p.map_or_else(dash, |p| format!("{:.3}", p.loss_pct)));
                }
                row
            })
            .collect();
        out.push('\n');
        out.push_str(&render(&headers, &rows));
    }
    out
}

/// Single trials, one row each (for `vnf gen` runs outside RFC 2544).
pub fn trial_table(results: &[TrialResult]) -> String {
    let headers = [
        "frame",
        "offered pps",
        "achieved pps",
        "tx",
        "rx",
        "lost",
        "loss %",
        "dup",
        "reord",
        "lat p50 us",
        "lat p99 us",
        "lat max us",
    ];
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|t| {
            vec![
                t.frame_size.clone(),
                format!("{:.0}", t.offered_pps),
                format!("{:.0}", t.achieved_pps),
                t.tx.to_string(),
                t.rx.to_string(),
                t.lost.to_string(),
                format!("{:.3}", t.loss_pct),
                t.duplicates.to_string(),
                t.reordered.to_string(),
                us(t.latency.p50_ns as f64),
                us(t.latency.p99_ns as f64),
                us(t.latency.max_ns as f64),
            ]
        })
        .collect();
    render(&headers, &rows)
}

pub fn json(r: &Rfc2544Report) -> String {
    // Serializing plain structs of numbers and strings cannot fail.
    serde_json::to_string_pretty(r).unwrap_or_default()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A round axis maximum at or above `v`: 1, 2 or 5 times a power of ten, in 5 ticks.
fn nice_step(v: f64) -> f64 {
    let raw = (v / 5.0).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

const W: f64 = 800.0;
const H: f64 = 460.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 70.0;

/// Throughput in Mpps per frame size as bars against the line rate, each labelled with
/// its share of the line.
pub fn svg(r: &Rfc2544Report) -> String {
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let top_value = r
        .sizes
        .iter()
        .map(|s| s.line_pps.max(s.throughput.as_ref().map_or(0.0, |t| t.pps)) / 1e6)
        .fold(0.0, f64::max);
    let step = nice_step(top_value);
    let ticks = (top_value / step).ceil().max(1.0) as u32;
    let y_max = step * f64::from(ticks);
    let y = |mpps: f64| TOP + plot_h - mpps / y_max * plot_h;
    let n = r.sizes.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = slot * 0.6;

    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let title = format!(
        "RFC 2544 throughput, {} Gb/s line, loss tolerance {}%",
        r.line_bps / 1e9,
        r.loss_tolerance_pct
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>"#,
        W / 2.0,
        escape(&title)
    );
    for i in 0..=ticks {
        let v = step * f64::from(i);
        let ty = y(v);
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{ty:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\" stroke=\"#ddd\"/>",
            W - RIGHT
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            ty + 4.0,
            format_tick(v, step)
        );
    }
    for (i, sz) in r.sizes.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let cx = x + bar / 2.0;
        let line_y = y(sz.line_pps / 1e6);
        let _ = writeln!(
            s,
            "<rect class=\"line\" x=\"{x:.1}\" y=\"{line_y:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>",
            TOP + plot_h - line_y
        );
        if let Some(t) = &sz.throughput {
            let ty = y(t.pps / 1e6);
            let _ = writeln!(
                s,
                "<rect class=\"throughput\" x=\"{x:.1}\" y=\"{ty:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"#3b7dd8\"><title>{} B: {:.3} Mpps, {:.2}% of line</title></rect>",
                TOP + plot_h - ty,
                escape(&sz.frame_size),
                t.pps / 1e6,
                t.pct_of_line
            );
            let _ = writeln!(
                s,
                r#"<text class="pct" x="{cx:.1}" y="{:.1}" text-anchor="middle">{:.1}%</text>"#,
                ty.min(line_y) - 6.0,
                t.pct_of_line
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + plot_h + 18.0,
            escape(&sz.frame_size)
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="black"/>"#,
        TOP + plot_h
    );
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        TOP + plot_h,
        W - RIGHT,
        TOP + plot_h
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="14">Frame size (bytes)</text>"#,
        LEFT + plot_w / 2.0,
        H - 36.0
    );
    let _ = writeln!(
        s,
        r#"<text x="20" y="{:.1}" text-anchor="middle" font-size="14" transform="rotate(-90 20 {:.1})">Throughput (Mpps)</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    // The legend sits in the bottom margin, right of the axis title, where no bar label
    // can reach it.
    let (lx, ly) = (W - RIGHT - 230.0, H - 18.0);
    let _ = writeln!(
        s,
        "<rect x=\"{lx}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"#3b7dd8\"/><text x=\"{}\" y=\"{ly}\">throughput (% of line)</text>",
        ly - 10.0,
        lx + 18.0
    );
    let _ = writeln!(
        s,
        "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"none\" stroke=\"#888\" stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{ly}\">line rate</text>",
        lx + 160.0,
        ly - 10.0,
        lx + 178.0
    );
    s.push_str("</svg>\n");
    s
}

fn format_tick(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::super::rfc2544::{BackToBack, LossPoint, SizeReport, Throughput};
    use super::super::rx::LatencyStats;
    use super::*;

    fn sample() -> Rfc2544Report {
        let size = |label: &str, line: f64, pps: f64, loss: &[(f64, f64)]| SizeReport {
            frame_size: label.to_string(),
            mean_frame_size: label.parse().unwrap_or(353.8),
            line_pps: line,
            throughput: Some(Throughput {
                pps,
                pct_of_line: pps / line * 100.0,
                bps: pps * 64.0 * 8.0,
                line_bps_used: pps * 84.0 * 8.0,
                trial: None,
            }),
            latency: Some(TrialResult {
                latency: LatencyStats {
                    count: 10,
                    min_ns: 1_500,
                    mean_ns: 2_345.0,
                    p50_ns: 2_000,
                    p99_ns: 9_870,
                    max_ns: 12_340,
                },
                ..TrialResult::default()
            }),
            frame_loss: loss
                .iter()
                .map(|&(pct, loss_pct)| LossPoint {
                    pct_of_line: pct,
                    offered_pps: line * pct / 100.0,
                    tx: 100,
                    rx: 100,
                    loss_pct,
                })
                .collect(),
            back_to_back: Some(BackToBack {
                frames: 123_456,
                pps: line,
                longest_tried: 200_000,
            }),
        };
        Rfc2544Report {
            line_bps: 10e9,
            loss_tolerance_pct: 0.0,
            resolution_pct: 0.5,
            trials: 42,
            sizes: vec![
                size(
                    "64",
                    14_880_952.38,
                    7_440_476.19,
                    &[(100.0, 50.0), (90.0, 0.0), (80.0, 0.0)],
                ),
                size("1518", 812_743.82, 812_743.82, &[(100.0, 0.0), (90.0, 0.0)]),
                size("a<b&c", 4_000_000.0, 1_000_000.0, &[]),
            ],
        }
    }

    #[test]
    fn table_is_aligned_and_holds_the_numbers() {
        let t = table(&sample());
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("frame"));
        assert!(lines[1].starts_with("-----"));
        // Every row of the first table is as wide as the rule under the header.
        let width = lines[1].len();
        assert!(lines[2..5].iter().all(|l| l.len() == width), "{t}");
        assert!(lines[2].contains("14.881") && lines[2].contains("7.440"));
        assert!(lines[2].contains("50.00") && lines[2].contains("3809.5"));
        assert!(
            lines[2].contains("1.50") && lines[2].contains("9.87") && lines[2].contains("12.34")
        );
        assert!(lines[2].ends_with("123456"));
        assert!(lines[3].contains("100.00"));
        // Frame loss: columns for 100, 90 and 80 %; 1518 did not step to 80 %.
        let loss: Vec<&str> = t
            .lines()
            .skip_while(|l| !l.starts_with("loss % at"))
            .collect();
        assert_eq!(
            loss[0].split_whitespace().collect::<Vec<_>>(),
            ["loss", "%", "at", "100%", "90%", "80%"]
        );
        assert_eq!(
            loss[2].split_whitespace().collect::<Vec<_>>(),
            ["64", "50.000", "0.000", "0.000"]
        );
        assert_eq!(
            loss[3].split_whitespace().collect::<Vec<_>>(),
            ["1518", "0.000", "0.000", "-"]
        );
    }

    #[test]
    fn trial_table_has_a_row_per_trial() {
        let r = TrialResult {
            frame_size: "imix".into(),
            offered_pps: 1e6,
            achieved_pps: 999_999.6,
            tx: 10,
            rx: 9,
            lost: 1,
            loss_pct: 10.0,
            ..TrialResult::default()
        };
        let t = trial_table(&[r.clone(), r]);
        assert_eq!(t.lines().count(), 4);
        let row: Vec<&str> = t.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(
            &row[..7],
            ["imix", "1000000", "1000000", "10", "9", "1", "10.000"]
        );
    }

    #[test]
    fn json_round_trips_the_values() {
        let v: serde_json::Value = serde_json::from_str(&json(&sample())).unwrap();
        assert_eq!(v["trials"], 42);
        assert_eq!(v["sizes"][0]["frame_size"], "64");
        assert_eq!(v["sizes"][0]["throughput"]["pps"], 7_440_476.19);
        assert_eq!(v["sizes"][0]["latency"]["latency"]["p99_ns"], 9_870);
        assert_eq!(v["sizes"][0]["frame_loss"][0]["loss_pct"], 50.0);
        assert_eq!(v["sizes"][1]["back_to_back"]["frames"], 123_456);
    }

    /// A small well-formedness check: declarations, balanced and properly nested tags,
    /// quoted attributes, and no bare '<' or '&' in text.
    fn well_formed(doc: &str) -> Result<usize, String> {
        let mut stack: Vec<String> = Vec::new();
        let mut elements = 0;
        let mut rest = doc;
        while let Some(open) = rest.find('<') {
            check_text(&rest[..open])?;
            let after = &rest[open + 1..];
            let close = after.find('>').ok_or("unclosed tag")?;
            let tag = &after[..close];
            rest = &after[close + 1..];
            if let Some(decl) = tag.strip_prefix('?') {
                if !decl.ends_with('?') || elements > 0 {
                    return Err(format!("bad declaration <{tag}>"));
                }
            } else if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else {
                if stack.is_empty() && elements > 0 {
                    return Err("second root element".into());
                }
                let self_closing = tag.ends_with('/');
                let body = tag.trim_end_matches('/');
                let name = body.split_whitespace().next().ok_or("empty tag")?;
                check_attributes(&body[name.len()..])?;
                elements += 1;
                if !self_closing {
                    stack.push(name.to_string());
                }
            }
        }
        check_text(rest)?;
        if !stack.is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        Ok(elements)
    }

    fn check_text(t: &str) -> Result<(), String> {
        for (i, _) in t.match_indices('&') {
            let ent = &t[i..];
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| ent.starts_with(e));
            if !ok {
                return Err(format!("bare & in {t:?}"));
            }
        }
        Ok(())
    }

    fn check_attributes(mut a: &str) -> Result<(), String> {
        let mut names = Vec::new();
        loop {
            a = a.trim_start();
            if a.is_empty() {
                return Ok(());
            }
            let eq = a
                .find('=')
                .ok_or(format!("attribute without value: {a:?}"))?;
            let name = a[..eq].trim();
            if name.is_empty() || name.contains(char::is_whitespace) || names.contains(&name) {
                return Err(format!("bad attribute name {name:?}"));
            }
            names.push(name);
            let v = &a[eq + 1..];
            let q = v
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '\'')
                .ok_or("unquoted value")?;
            let end = v[1..].find(q).ok_or("unterminated value")?;
            let value = &v[1..1 + end];
            if value.contains('<') {
                return Err("'<' in attribute".into());
            }
            check_text(value)?;
            a = &v[end + 2..];
        }
    }

    #[test]
    fn the_checker_rejects_broken_xml() {
        assert!(well_formed("<a><b/></a>").is_ok());
        for bad in [
            "<a><b></a></b>",
            "<a>",
            "<a x=1/>",
            "<a>&</a>",
            "<a/><b/>",
            "<a x='1' x='2'/>",
        ] {
            assert!(well_formed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn svg_is_well_formed_and_plots_the_values() {
        let doc = svg(&sample());
        let elements = well_formed(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        assert!(elements > 20);
        assert!(doc.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(doc.contains("Frame size (bytes)") && doc.contains("Throughput (Mpps)"));
        assert!(doc.contains(">50.0%</text>") && doc.contains(">100.0%</text>"));
        assert!(doc.contains("a&lt;b&amp;c"), "labels are escaped");
        assert_eq!(doc.matches("class=\"throughput\"").count(), 3);
        // Axis up to 15 Mpps in steps of 5 (the 64-byte line rate is 14.88): the 7.44
        // Mpps bar reaches 7.44/15 of the plot height above the x axis.
        assert!(doc.contains(">15</text>") && !doc.contains(">20</text>"));
        let plot_h = H - TOP - BOTTOM;
        let want = format!(
            "height=\"{:.1}\" fill=\"#3b7dd8\"",
            7.44047619 / 15.0 * plot_h
        );
        assert!(doc.contains(&want), "{want}");
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(14.88), 5.0);
        assert_eq!(nice_step(0.81), 0.2);
        assert_eq!(nice_step(100.0), 20.0);
        assert_eq!(format_tick(0.4, 0.2), "0.4");
        assert_eq!(format_tick(10.0, 5.0), "10");
    }
}
