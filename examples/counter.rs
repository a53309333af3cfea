//! The local playground's counter app: writes a row every 10 ms to whichever site accepts
//! writes, logs each acknowledged id, and on exit (SIGINT/SIGTERM or `--duration`) reports
//! RPO (acknowledged ids missing on the writable site) and RTO (longest gap between acks).
//!
//! ```text
//! counter --site iad=127.0.0.1:3306 --site pdx=127.0.0.1:3307 --user counter \
//!         --password-env COUNTER_PASSWORD --log acks.log [--interval-ms 10] [--duration-s 60]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/writer.rs"]
#[allow(dead_code)]
mod writer;

use std::io::Write as _;
use std::time::{Duration, Instant};

use writer::{Ack, SiteTarget, Writer};

struct Args {
    sites: Vec<SiteTarget>,
    user: String,
    password: String,
    table: String,
    log: Option<String>,
    interval: Duration,
    duration: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        sites: Vec::new(),
        user: "root".to_owned(),
        password: String::new(),
        table: "playground.counter".to_owned(),
        log: None,
        interval: Duration::from_millis(10),
        duration: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--site" => {
                let v = value()?;
                let (name, addr) = v.split_once('=').ok_or("--site NAME=HOST:PORT")?;
                let (host, port) = addr.rsplit_once(':').ok_or("--site NAME=HOST:PORT")?;
                args.sites.push(SiteTarget {
                    name: name.to_owned(),
                    host: host.to_owned(),
                    port: port.parse().map_err(|_| format!("bad port in {v}"))?,
                });
            }
            "--user" => args.user = value()?,
            "--password-env" => {
                let name = value()?;
                args.password = std::env::var(&name).map_err(|_| format!("{name} is not set"))?;
            }
            "--table" => args.table = value()?,
            "--log" => args.log = Some(value()?),
            "--interval-ms" => {
                args.interval =
                    Duration::from_millis(value()?.parse().map_err(|_| "bad --interval-ms")?);
            }
            "--duration-s" => {
                args.duration = Some(Duration::from_secs(
                    value()?.parse().map_err(|_| "bad --duration-s")?,
                ));
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.sites.len() < 2 {
        return Err("give at least two --site NAME=HOST:PORT".to_owned());
    }
    Ok(args)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("counter: {e}");
            std::process::exit(2);
        }
    };
    let mut log = args.log.as_ref().map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .expect("opening the ack log")
    });
    let mut writer = Writer::new(args.sites, &args.user, &args.password, &args.table);
    writer.start_after_existing().await;
    let started = Instant::now();
    let mut acks: Vec<Ack> = Vec::new();
    let mut ticker = tokio::time::interval(args.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    let mut last_report = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = ticker.tick() => {}
        }
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if let Some(ack) = writer.tick().await {
            if let Some(f) = log.as_mut() {
                let _ = writeln!(
                    f,
                    "{} {} {}",
                    ack.wall_ms,
                    ack.id,
                    writer.site_name(ack.site)
                );
            }
            if acks.last().is_some_and(|prev| prev.site != ack.site) {
                let gap = ack.at.duration_since(acks.last().unwrap().at);
                println!(
                    "writes moved {} -> {} after a {:.3}s gap",
                    writer.site_name(acks.last().unwrap().site),
                    writer.site_name(ack.site),
                    gap.as_secs_f64()
                );
            }
            acks.push(ack);
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let last = acks.last().map_or("none", |a| writer.site_name(a.site));
            println!("{} writes acknowledged; writing to {last}", acks.len());
        }
    }
    report(&mut writer, &acks).await;
}

async fn report(writer: &mut Writer, acks: &[Ack]) {
    println!("acknowledged writes: {}", acks.len());
    if let Some((gap, before, after)) = writer::longest_gap(acks) {
        println!(
            "RTO (longest gap between acknowledged writes): {:.3}s ({} -> {})",
            gap.as_secs_f64(),
            writer.site_name(before.site),
            writer.site_name(after.site)
        );
    }
    let ids: Vec<u64> = acks.iter().map(|a| a.id).collect();
    match writer.writable_site().await {
        Some(site) => match writer.missing_on(site, &ids).await {
            Some(missing) => println!(
                "RPO: {} acknowledged writes missing on {}{}",
                missing.len(),
                writer.site_name(site),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(" (ids {:?})", &missing[..missing.len().min(20)])
                }
            ),
            None => println!("RPO: unknown ({} did not answer)", writer.site_name(site)),
        },
        None => println!("RPO: unknown (no writable site to check)"),
    }
}
