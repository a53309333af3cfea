//! Lint throughput and peak memory, end to end from YAML, on one core.
//!
//! Target (issue 2): at least 10,000 `MysqlFailoverGroup` objects a second, and under
//! 100 MiB peak memory, on a generated corpus of at least 10,000 objects.
//!
//! ```text
//! cargo bench --bench lint                       # the figures for docs/performance.md
//! cargo bench --bench lint -- --groups 20000 --rounds 3
//! cargo bench --bench lint -- --write-deployments DIR --deployments 2000
//! cargo bench --bench lint -- --write-groups FILE --groups 10000
//! cargo bench --bench lint -- --lint-dir DIR     # what `bloodraven lint DIR` does, timed
//! cargo bench --bench lint -- --context-scaling --groups 10000 --rounds 3
//! cargo bench --bench lint -- --write-context-groups FILE --groups 4000   # one namespace
//! ```
//!
//! A plain `harness = false` program with `Instant` (no criterion): the work is seconds
//! long, so the best and median of a few rounds are stable enough, and the dependency set
//! stays lean. Peak memory is measured in a child process (this binary re-run with
//! `--rss-child FILE`) so the parent's corpus and earlier rounds do not count.

mod corpus;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bloodraven::policy::manifest::{Document, ParseError, parse_stream};
use bloodraven::policy::report::{Format, RenderOptions, render};
use bloodraven::policy::rules::{BundleContext, Catalog, LintConfig, Linter, Report};

struct Args {
    groups: usize,
    deployments: usize,
    rounds: usize,
    write_deployments: Option<PathBuf>,
    write_groups: Option<PathBuf>,
    lint_dir: Option<PathBuf>,
    rss_child: Option<PathBuf>,
    context_scaling: bool,
    write_context_groups: Option<PathBuf>,
    write_review: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        groups: 10_000,
        deployments: 10_000,
        rounds: 5,
        write_deployments: None,
        write_groups: None,
        lint_dir: None,
        rss_child: None,
        context_scaling: false,
        write_context_groups: None,
        write_review: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--groups" => args.groups = number(&value()?)?,
            "--deployments" => args.deployments = number(&value()?)?,
            "--rounds" => args.rounds = number(&value()?)?.max(1),
            "--write-deployments" => args.write_deployments = Some(value()?.into()),
            "--write-groups" => args.write_groups = Some(value()?.into()),
            "--lint-dir" => args.lint_dir = Some(value()?.into()),
            "--rss-child" => args.rss_child = Some(value()?.into()),
            "--context-scaling" => args.context_scaling = true,
            "--write-context-groups" => args.write_context_groups = Some(value()?.into()),
            "--write-review" => args.write_review = Some(value()?.into()),
            // `cargo bench` passes `--bench`; filters are meaningless here.
            "--bench" => {}
            other if !other.starts_with('-') => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn number(s: &str) -> Result<usize, String> {
    s.replace('_', "").parse().map_err(|e| format!("{s}: {e}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench lint: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    if let Some(file) = &args.rss_child {
        return rss_child(file);
    }
    if let Some(dir) = &args.write_deployments {
        return write_deployments(dir, args.deployments);
    }
    if let Some(file) = &args.write_groups {
        std::fs::write(file, corpus::mfg_stream(args.groups))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        println!(
            "wrote {} MysqlFailoverGroups and their bundle to {}",
            args.groups,
            file.display()
        );
        return Ok(());
    }
    if let Some(dir) = &args.lint_dir {
        return lint_dir(dir);
    }
    if let Some(file) = &args.write_context_groups {
        let text = corpus::own_context_stream(args.groups, corpus::Layout::OneNamespace, true);
        std::fs::write(file, text).map_err(|e| format!("{}: {e}", file.display()))?;
        println!(
            "wrote {} MysqlFailoverGroups with their own Secrets, NetworkPolicy and PDB, in one namespace, to {}",
            args.groups,
            file.display()
        );
        return Ok(());
    }
    if let Some(file) = &args.write_review {
        return write_review(file);
    }
    if args.context_scaling {
        return context_scaling(args.groups, args.rounds);
    }
    let (catalog, which) = catalog_for("MysqlFailoverGroup")?;
    println!("## MysqlFailoverGroup corpus ({which})");
    let text = corpus::mfg_stream(args.groups);
    throughput(&text, &catalog, "MysqlFailoverGroup", args.rounds)?;
    peak_rss(&text)?;
    let (catalog, which) = catalog_for("Deployment")?;
    println!("\n## Deployment corpus ({which})");
    let text = (0..args.deployments).fold(String::new(), |mut text, i| {
        text.push_str("---\n");
        text.push_str(&corpus::deployment(i));
        text
    });
    throughput(&text, &catalog, "Deployment", args.rounds)
}

/// The built-in catalog and how many of its rules apply to `kind`.
fn catalog_for(kind: &str) -> Result<(Arc<Catalog>, String), String> {
    let catalog = Catalog::builtin().map_err(|e| e.to_string())?;
    let rules = catalog
        .rules()
        .iter()
        .filter(|r| r.applies_to(kind))
        .count();
    if rules == 0 {
        return Err(format!("the built-in catalog has no rule for {kind}"));
    }
    Ok((
        catalog,
        format!("built-in catalog, {rules} rules for {kind}"),
    ))
}

/// What the CLI does with parsed input: give every object to the bundle context, lint.
fn lint_documents(documents: &[Document], errors: Vec<ParseError>, linter: &Linter) -> Report {
    let bundle = BundleContext::of_documents(documents);
    linter.lint(documents, errors, &bundle)
}

fn throughput(text: &str, catalog: &Arc<Catalog>, kind: &str, rounds: usize) -> Result<(), String> {
    let linter = Linter::new(Arc::clone(catalog), LintConfig::default());
    let stream = parse_stream(Some("corpus.yaml"), text);
    if !stream.errors.is_empty() {
        return Err(format!(
            "the generated corpus does not parse: {:?}",
            stream.errors[0]
        ));
    }
    let objects = stream.documents.len();
    let of_kind = stream
        .documents
        .iter()
        .filter(|d| d.value.get("kind").and_then(|k| k.as_str()) == Some(kind))
        .count();
    drop(stream);
    println!(
        "corpus: {of_kind} {kind} objects, {objects} objects in all, {} lines, {:.1} MiB",
        text.lines().count(),
        mib(text.len())
    );
    let mut totals = Vec::with_capacity(rounds);
    let mut parses = Vec::with_capacity(rounds);
    let mut cpu = Vec::with_capacity(rounds);
    let mut report = Report::default();
    for _ in 0..rounds {
        let cpu_start = thread_cpu_time();
        let start = Instant::now();
        let stream = parse_stream(Some("corpus.yaml"), text);
        let parse_time = start.elapsed();
        report = lint_documents(&stream.documents, stream.errors, &linter);
        totals.push(start.elapsed());
        parses.push(parse_time);
        if let (Some(a), Some(b)) = (cpu_start, thread_cpu_time()) {
            cpu.push(b.saturating_sub(a));
        }
    }
    let findings: usize = report.summary.findings.values().sum();
    if findings == 0 {
        return Err("the corpus produced no findings: the rules did not run".into());
    }
    let (best, median) = best_and_median(&mut totals);
    let (parse_best, _) = best_and_median(&mut parses);
    if !cpu.is_empty() {
        // On a shared machine wall time includes waiting for a core; on-CPU time does not.
        let (cpu_best, cpu_median) = best_and_median(&mut cpu);
        println!(
            "on-CPU time: best {cpu_best:.3?}, median {cpu_median:.3?} -> {:.0} {kind}/s per busy core (best)",
            per_second(of_kind, cpu_best)
        );
    }
    println!(
        "parse + lint, {rounds} rounds: best {best:.3?}, median {median:.3?} \
         (parse {parse_best:.3?} of the best)"
    );
    println!(
        "throughput: {:.0} {kind}/s best, {:.0} {kind}/s median; {:.0} objects/s, {:.1} MiB/s (best)",
        per_second(of_kind, best),
        per_second(of_kind, median),
        per_second(objects, best),
        mib(text.len()) / best.as_secs_f64()
    );
    println!(
        "findings: {findings} active {:?}, {} suppressed, {} objects checked, {} skipped",
        report.summary.findings,
        report.summary.suppressed,
        report.summary.objects_checked,
        report.summary.objects_skipped
    );
    let opts = RenderOptions::default();
    for format in [Format::Text, Format::Json, Format::Sarif, Format::Junit] {
        let cpu_start = thread_cpu_time();
        let start = Instant::now();
        let out = render(&report, catalog, format, &opts);
        let wall = start.elapsed();
        let on_cpu = cpu_start
            .zip(thread_cpu_time())
            .map(|(a, b)| b.saturating_sub(a));
        println!(
            "render {format}: {wall:.3?} wall, {:.3?} on-CPU, for {} findings, {:.1} MiB",
            on_cpu.unwrap_or_default(),
            report.findings.len(),
            mib(out.len())
        );
    }
    Ok(())
}

/// The production-ready example's group in a CREATE `AdmissionReview`, as
/// `benches/admission.rs` sends it (for `scripts/bench-lint-serve.sh`).
fn write_review(file: &Path) -> Result<(), String> {
    let text = include_str!("../../docs/examples/production-ready.yaml");
    let group = parse_stream(None, text)
        .documents
        .into_iter()
        .map(|d| d.value)
        .find(|v| v["kind"] == "MysqlFailoverGroup")
        .ok_or("no MysqlFailoverGroup in the production-ready example")?;
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "bench", "operation": "CREATE", "namespace": "db",
            "kind": {"group": "shipstream.io", "version": "v1alpha1", "kind": "MysqlFailoverGroup"},
            "resource": {"group": "shipstream.io", "version": "v1alpha1", "resource": "mysqlfailovergroups"},
            "userInfo": {"username": "bench"}, "object": group, "dryRun": false
        }
    });
    std::fs::write(file, review.to_string()).map_err(|e| format!("{}: {e}", file.display()))
}

/// Lint time against the number of groups that bring their own context objects (five
/// Secrets, a NetworkPolicy, a PDB), in one namespace and in a namespace each, next to the
/// same groups without those objects: keyed lookups keep all three linear, and the context
/// objects within a small factor of the baseline.
fn context_scaling(groups: usize, rounds: usize) -> Result<(), String> {
    use corpus::Layout;
    let (catalog, which) = catalog_for("MysqlFailoverGroup")?;
    let linter = Linter::new(Arc::clone(&catalog), LintConfig::default());
    println!("## context scaling ({which}; parse + bundle + lint, on-CPU, best of {rounds})");
    println!(
        "{:>7} {:>14} {:>14} {:>14} {:>10} {:>10}",
        "groups", "no context", "one namespace", "namespace each", "ratio one", "ratio each"
    );
    for n in [groups / 4, groups / 2, groups] {
        let mut row = Vec::new();
        for (layout, context) in [
            (Layout::OneNamespace, false),
            (Layout::OneNamespace, true),
            (Layout::NamespacePerGroup, true),
        ] {
            let text = corpus::own_context_stream(n, layout, context);
            let mut best = Duration::MAX;
            for _ in 0..rounds {
                let cpu_start = thread_cpu_time();
                let start = Instant::now();
                let stream = parse_stream(Some("corpus.yaml"), &text);
                let report = lint_documents(&stream.documents, stream.errors, &linter);
                let took = cpu_start
                    .zip(thread_cpu_time())
                    .map_or_else(|| start.elapsed(), |(a, b)| b.saturating_sub(a));
                if report.summary.objects_checked < n {
                    return Err(format!(
                        "only {} objects checked",
                        report.summary.objects_checked
                    ));
                }
                best = best.min(took);
            }
            row.push(best);
        }
        println!(
            "{n:>7} {:>12.3?} {:>14.3?} {:>14.3?} {:>9.2}x {:>9.2}x",
            row[0],
            row[1],
            row[2],
            row[1].as_secs_f64() / row[0].as_secs_f64(),
            row[2].as_secs_f64() / row[0].as_secs_f64()
        );
    }
    Ok(())
}

/// This thread's on-CPU time (`/proc/thread-self/schedstat`, nanoseconds), Linux only.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

fn best_and_median(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    (times[0], times[times.len() / 2])
}

// Counts and sizes here are far below 2^52: the conversions are exact.
#[allow(clippy::cast_precision_loss)]
fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Runs one end-to-end pass in a fresh process and reports its peak resident set.
fn peak_rss(text: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("bloodraven-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("corpus.yaml");
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .arg("--rss-child")
        .arg(&file)
        .output()
        .map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    if !out.status.success() {
        return Err(format!(
            "rss child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

/// The child: read the corpus file, parse, lint, render JSON, then print `VmHWM`, with the
/// resident set after each stage to show where the memory goes.
fn rss_child(file: &Path) -> Result<(), String> {
    let before = vm_hwm_kib()?;
    let (catalog, _) = catalog_for("MysqlFailoverGroup")?;
    let linter = Linter::new(Arc::clone(&catalog), LintConfig::default());
    let start = Instant::now();
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let stream = parse_stream(Some(&file.display().to_string()), &text);
    let parsed = vm_rss_kib()?;
    let bundle = BundleContext::of_documents(&stream.documents);
    let bundled = vm_rss_kib()?;
    let report = linter.lint(&stream.documents, stream.errors, &bundle);
    let json = render(&report, &catalog, Format::Json, &RenderOptions::default());
    let elapsed = start.elapsed();
    let peak = vm_hwm_kib()?;
    println!(
        "peak memory (fresh process: read file, parse, lint, render JSON): VmHWM {:.1} MiB \
         (process baseline {:.1} MiB; input {:.1} MiB, JSON output {:.1} MiB, {elapsed:.3?})",
        kib_to_mib(peak),
        kib_to_mib(before),
        mib(text.len()),
        mib(json.len())
    );
    println!(
        "resident after parsing {:.1} MiB, after building the bundle context {:.1} MiB",
        kib_to_mib(parsed),
        kib_to_mib(bundled)
    );
    Ok(())
}

#[allow(clippy::cast_precision_loss)]
fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn vm_rss_kib() -> Result<u64, String> {
    proc_status_kib("VmRSS:")
}

fn vm_hwm_kib() -> Result<u64, String> {
    proc_status_kib("VmHWM:")
}

fn proc_status_kib(field: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/self/status"))
}

/// One Deployment per file, the way application repositories keep them.
fn write_deployments(dir: &Path, count: usize) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for i in 0..count {
        let path = dir.join(format!("deploy-{i:05}.yaml"));
        std::fs::write(&path, corpus::deployment(i))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!("wrote {count} Deployments to {}", dir.display());
    Ok(())
}

/// `bloodraven lint DIR` in-process: walk, read, parse, lint the whole bundle, render text.
fn lint_dir(dir: &Path) -> Result<(), String> {
    let cpu_start = thread_cpu_time();
    let start = Instant::now();
    let (catalog, which) = catalog_for("Deployment")?;
    let linter = Linter::new(Arc::clone(&catalog), LintConfig::default());
    let mut files = Vec::new();
    collect_yaml(dir, &mut files)?;
    files.sort();
    let mut documents = Vec::new();
    let mut errors = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let stream = parse_stream(Some(&file.display().to_string()), &text);
        documents.extend(stream.documents);
        errors.extend(stream.errors);
    }
    let report = lint_documents(&documents, errors, &linter);
    let text = render(&report, &catalog, Format::Text, &RenderOptions::default());
    let elapsed = start.elapsed();
    let on_cpu = cpu_start
        .zip(thread_cpu_time())
        .map(|(a, b)| b.saturating_sub(a));
    let findings: usize = report.summary.findings.values().sum();
    println!(
        "lint-dir ({which}): {} files, {} objects, {findings} findings, {} bytes of text output in {elapsed:.3?} \
         wall, {:.3?} on-CPU ({:.0} objects/s wall)",
        files.len(),
        report.summary.objects_checked,
        text.len(),
        on_cpu.unwrap_or_default(),
        per_second(report.summary.objects_checked, elapsed)
    );
    Ok(())
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(path);
        }
    }
    Ok(())
}
