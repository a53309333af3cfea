//! `bloodraven crds`: render the CustomResourceDefinitions into `crds/`, or check that the
//! committed ones are current.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::api::crd;

#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Directory to write one YAML file per CRD into; without it, print them as one stream.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With --out: do not write, exit 1 if the files there differ from the generated ones.
    #[arg(long, requires = "out")]
    pub check: bool,
}

pub fn run(args: &CrdsArgs) -> ExitCode {
    let mut stale = Vec::new();
    let mut stream = String::new();
    for (file, definition) in crd::all() {
        let yaml = match crd::to_yaml(&definition) {
            Ok(y) => y,
            Err(e) => {
                eprintln!("bloodraven crds: rendering {file}: {e}");
                return ExitCode::from(2);
            }
        };
        let Some(dir) = &args.out else {
            stream.push_str("---\n");
            stream.push_str(&yaml);
            continue;
        };
        let path = dir.join(file);
        if args.check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(yaml.as_str()) {
                stale.push(path.display().to_string());
            }
        } else if let Err(e) =
            std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, yaml))
        {
            eprintln!("bloodraven crds: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if args.out.is_none() {
        print!("{stream}");
    }
    if stale.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "bloodraven crds: stale: {} (run `bloodraven crds --out crds`)",
            stale.join(", ")
        );
        ExitCode::from(1)
    }
}
