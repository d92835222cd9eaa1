//! `slipway show`: render a plan saved with `plan -out FILE`.
//!
//! Reading the file is `plan::saved::read`, rendering is `views`; it reads
//! no configuration and no state.

use std::path::PathBuf;

use clap::Args;

use crate::plan::saved;
use crate::views::{self, ViewFormat};

use super::common::use_color;
use super::EXIT_OK;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan file written by `slipway plan -out FILE`.
    pub planfile: PathBuf,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the plan as markdown.
    #[arg(long)]
    pub markdown: bool,
    #[arg(long = "no-color")]
    pub no_color: bool,
}

pub(super) fn show(args: &ShowArgs) -> anyhow::Result<u8> {
    let plan = saved::read(&args.planfile)?;
    let view = if args.json {
        ViewFormat::Json
    } else if args.markdown {
        ViewFormat::Markdown
    } else {
        ViewFormat::Human {
            color: use_color(args.no_color),
        }
    };
    print!("{}", views::render(&plan, view));
    Ok(EXIT_OK)
}
