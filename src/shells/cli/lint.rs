//! `bloodraven lint [PATH...|-]`: the rule catalog over manifests, for CI pipelines.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use json_patch::PatchOperation;
use serde_json::Value;

use super::inputs::{self, Input, Unreadable};
use crate::policy::manifest::edit::{FieldInsert, insert_fields};
use crate::policy::manifest::{Document, Location, ParseError, parse_each, parse_stream};
use crate::policy::report::{Format, RenderOptions, render_to};
use crate::policy::rules::pointer::tokens;
use crate::policy::rules::{BundleContext, Catalog, Level, LintConfig, Linter, ObjectRef, Report};

/// Where the rule documentation lives; SARIF `helpUri`s point into it.
pub const DEFAULT_DOCS_URL: &str =
    "https://github.com/shipstream/bloodraven/blob/main/docs/rules.md";

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files or directories (searched recursively for .yaml, .yml, .json); `-` reads stdin.
    #[arg(default_value = "-")]
    pub paths: Vec<String>,
    /// Report format.
    #[arg(short, long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
    /// Exit 1 when an active finding is at or above this level.
    #[arg(long, value_enum, default_value_t = FailOn::Required)]
    pub fail_on: FailOn,
    /// Configuration file: enable/disable rules, override levels, exemptions.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Write the safe fixes back into the files.
    #[arg(long)]
    pub fix: bool,
    /// With --fix: print the JSON Patch of every object instead of writing.
    #[arg(long, requires = "fix")]
    pub dry_run: bool,
    /// Colour in text output.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// Base URL of the rule documentation, for SARIF help links.
    #[arg(long, default_value = DEFAULT_DOCS_URL)]
    pub docs_url: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Text,
    Json,
    Sarif,
    Junit,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
            FormatArg::Sarif => Format::Sarif,
            FormatArg::Junit => Format::Junit,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailOn {
    Required,
    Recommended,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

/// Exit code for usage, configuration and parse errors.
const EXIT_USAGE: u8 = 2;

pub fn run(args: &LintArgs) -> ExitCode {
    match execute(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("bloodraven lint: {message}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn execute(args: &LintArgs) -> Result<ExitCode, String> {
    let catalog = Catalog::builtin().map_err(|e| e.to_string())?;
    let config = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            LintConfig::parse(&path.display().to_string(), &text, &catalog)
                .map_err(|e| e.to_string())?
        }
        None => LintConfig::default(),
    };
    let linter = Linter::new(Arc::clone(&catalog), config);
    let mut inputs = inputs::collect(&args.paths).map_err(|e| e.to_string())?;
    if args.fix && !args.dry_run && inputs.iter().any(|i| i.path.is_none()) {
        return Err("--fix cannot write back to stdin; use --fix --dry-run".to_owned());
    }

    if args.fix {
        let (documents, _) = parse_all(&inputs);
        let ctx = BundleContext::of_documents(&documents);
        if args.dry_run {
            print_patches(&linter, &documents, &ctx);
            return Ok(ExitCode::SUCCESS);
        }
        apply_fixes(&linter, &mut inputs, &documents, &ctx)?;
    }
    let report = lint_streaming(&linter, &inputs);
    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let options = RenderOptions {
        color,
        docs_base_url: args.docs_url.clone(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        truncation: None,
    };
    // Written as it is rendered: a large report never exists whole in memory.
    let mut stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    render_to(&report, &catalog, args.format.into(), &options, &mut stdout)
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("writing the report: {e}"))?;
    let threshold = match args.fail_on {
        FailOn::Required => Some(Level::Required),
        FailOn::Recommended => Some(Level::Recommended),
        FailOn::None => None,
    };
    Ok(if !report.parse_errors.is_empty() {
        ExitCode::from(EXIT_USAGE)
    } else if threshold.is_some_and(|t| report.fails_at(t)) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Lints every input one document at a time: each document is parsed, checked and dropped,
/// so memory stays flat however large the bundle is. Cross-object lookups come from a
/// context built first from the documents of the kinds rules look up.
fn lint_streaming(linter: &Linter, inputs: &[Input]) -> Report {
    let ctx = BundleContext::from_texts(inputs.iter().filter_map(|i| i.text.as_deref().ok()));
    let mut report = Report::default();
    let mut errors = Vec::new();
    for input in inputs {
        match &input.text {
            Ok(text) => errors.extend(parse_each(Some(&input.name), text, &mut |doc| {
                linter.add(&mut report, &doc, &ctx);
            })),
            Err(message) => errors.push(unreadable(input, message)),
        }
    }
    Linter::finish(report, errors)
}

fn unreadable(input: &Input, problem: &Unreadable) -> ParseError {
    ParseError {
        location: Location {
            file: Some(input.name.as_str().into()),
            line: problem.line,
            column: problem.column,
        },
        message: problem.message.clone(),
    }
}

fn parse_all(inputs: &[Input]) -> (Vec<Document>, Vec<ParseError>) {
    let mut documents = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        match &input.text {
            Ok(text) => {
                let stream = parse_stream(Some(&input.name), text);
                documents.extend(stream.documents);
                errors.extend(stream.errors);
            }
            Err(message) => errors.push(unreadable(input, message)),
        }
    }
    (documents, errors)
}

fn print_patches(linter: &Linter, documents: &[Document], ctx: &BundleContext) {
    for doc in documents {
        let ops = linter.fixes(&doc.value, ctx);
        if ops.is_empty() {
            continue;
        }
        let entry = serde_json::json!({
            "file": doc.file.as_deref(),
            "line": doc.line,
            "object": ObjectRef::of(&doc.value),
            "patch": ops,
        });
        println!("{entry}");
    }
}

/// Writes every document's fixes into its file, inserting lines so nothing else changes.
fn apply_fixes(
    linter: &Linter,
    inputs: &mut [Input],
    documents: &[Document],
    ctx: &BundleContext,
) -> Result<(), String> {
    for input in inputs.iter_mut() {
        let (Some(path), Ok(text)) = (&input.path, &input.text) else {
            continue;
        };
        let mut inserts = Vec::new();
        for doc in documents
            .iter()
            .filter(|d| d.file.as_deref() == Some(input.name.as_str()))
        {
            for op in linter.fixes(&doc.value, ctx) {
                inserts.push(
                    to_insert(doc, &op)
                        .ok_or_else(|| format!("{}: fix {op} is not an insertion", input.name))?,
                );
            }
        }
        if inserts.is_empty() {
            continue;
        }
        let fixed = insert_fields(text, &inserts).map_err(|e| format!("{}: {e}", input.name))?;
        std::fs::write(path, &fixed).map_err(|e| format!("{}: {e}", input.name))?;
        eprintln!("fixed {} field(s) in {}", inserts.len(), input.name);
        input.text = Ok(fixed);
    }
    Ok(())
}

fn to_insert<'a>(doc: &'a Document, op: &PatchOperation) -> Option<FieldInsert<'a>> {
    let Value::Object(op) = serde_json::to_value(op).ok()? else {
        return None;
    };
    if op.get("op")? != "add" {
        return None;
    }
    let path = op.get("path")?.as_str()?;
    let cut = path.rfind('/')?;
    Some(FieldInsert {
        document: doc,
        parent: path[..cut].to_owned(),
        key: tokens(&path[cut..]).next()?,
        value: op.get("value")?.clone(),
    })
}
