//! vnf: a userspace virtual switch for hypervisor hosts.

use vnf::{control, gen_cmd, l2, l3, logger};

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use deploy::{Manifest, DEFAULT_MANIFEST_NAME};

use vnf::switch::Switch;
use vnf::worker::{Worker, WorkerStats};

const USAGE: &str = "usage:
  vnf [run [MANIFEST] [--stats SECONDS]] run the switch (the embedded default manifest if none)
  vnf validate [--print] MANIFEST        check a manifest; --print shows it with defaults filled in
  vnf default-manifest                   print the embedded default manifest
  vnf gen --port SOCKET [--port SOCKET] ...  traffic generator and RFC 2544 tester (vnf gen --help)";

fn main() -> ExitCode {
    logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        // No command at all: run the embedded default manifest.
        None => run(&[]),
        Some("run") => run(&args[1..]),
        Some("validate") => validate(&args[1..]),
        Some("default-manifest") => {
            print!("{}", deploy::DEFAULT_MANIFEST);
            Ok(())
        }
        Some("gen") if args.iter().any(|a| a == "--help" || a == "-h") => {
            println!("{}", gen_cmd::USAGE);
            Ok(())
        }
        Some("gen") => gen_cmd::main(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn validate(args: &[String]) -> Result<(), String> {
    let print = args.iter().any(|a| a == "--print");
    let files: Vec<&String> = args.iter().filter(|a| *a != "--print").collect();
    let [file] = files.as_slice() else {
        return Err(USAGE.to_string());
    };
    let m = Manifest::load(std::path::Path::new(file)).map_err(|d| d.to_string())?;
    if print {
        print!("{}", m.to_yaml());
    } else {
        println!("{file}: ok");
    }
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let mut file: Option<PathBuf> = None;
    let mut stats_every = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--stats" => {
                let secs: f64 = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|s: &f64| *s > 0.0)
                    .ok_or("--stats needs a number of seconds")?;
                stats_every = Some(Duration::from_secs_f64(secs));
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n{USAGE}")),
            s if file.is_none() => file = Some(PathBuf::from(s)),
            _ => return Err(USAGE.to_string()),
        }
    }
    let manifest = match &file {
        Some(f) => Manifest::load(f).map_err(|d| d.to_string())?,
        None => Manifest::default_manifest(),
    };
    let source = file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| DEFAULT_MANIFEST_NAME.to_string());
    log::info!(
        "starting with {source}: {} port(s), {} worker(s), {:?} polling",
        manifest.ports.len(),
        manifest.workers.count,
        manifest.workers.poll
    );

    control::block_signals().map_err(|e| format!("cannot block signals: {e}"))?;
    let switch =
        Switch::build(&manifest).map_err(|e| format!("cannot build the forwarding tables: {e}"))?;
    let plans = switch.plan(&manifest);
    let switch = Arc::new(switch);
    let stop = Arc::new(AtomicBool::new(false));
    let mut worker_stats = Vec::new();
    let mut handles = Vec::new();
    for plan in plans {
        let stats = Arc::new(WorkerStats::new(&switch));
        worker_stats.push(stats.clone());
        let w = Worker::new(
            plan,
            switch.clone(),
            manifest.workers.poll,
            stats,
            stop.clone(),
        );
        handles.push(w.spawn().map_err(|e| format!("cannot start worker: {e}"))?);
    }
    let ager = l2::L2::spawn_ager(switch.l2.clone(), stop.clone())
        .map_err(|e| format!("cannot start the MAC ager: {e}"))?;
    handles.push(ager);
    if let Some(r) = &switch.router {
        let timer = l3::Router::spawn_timer(r.clone(), stop.clone())
            .map_err(|e| format!("cannot start the router timer: {e}"))?;
        handles.push(timer);
    }
    switch
        .start_ports(&manifest)
        .map_err(|e| format!("cannot start ports: {e}"))?;
    control::run(switch, worker_stats, stats_every, stop).map_err(|e| e.to_string())?;
    for h in handles {
        let _ = h.join();
    }
    // Port threads may be blocked in accept(); the process ends them.
    Ok(())
}
