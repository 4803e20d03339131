//! `starling data`: get MNIST onto this machine and check a dataset directory.

use std::path::PathBuf;

use anyhow::{Context, Result};
use starling_models::data::download::{MNIST_MIRRORS, ensure_mnist};
use starling_models::data::{Mnist, Verify, mnist};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Download MNIST into the cache (verified by SHA-256; files already
    /// there are checked, not trusted).
    Download {
        /// Where to keep it. Default: $XDG_CACHE_HOME/starling/mnist or ~/.cache/starling/mnist.
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Load MNIST from a directory and check it.
    Check {
        /// The directory with the four IDX files (raw or .gz). Default: $STARLING_DATA.
        #[arg(long, env = "STARLING_DATA")]
        data: PathBuf,
        /// Accept any IDX files of MNIST's shape (e.g. Fashion-MNIST), not only MNIST's exact bytes.
        #[arg(long)]
        any_content: bool,
    },
}

/// The default download cache.
pub(crate) fn default_cache() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set: pass --cache")?)
            .join(".cache"),
    };
    Ok(base.join("starling").join("mnist"))
}

/// The MNIST directory to use: `data` (from `--data` or `STARLING_DATA`)
/// if given, else the download cache if MNIST is there.
pub(crate) fn locate_mnist(data: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = data {
        return Ok(dir);
    }
    let cache = default_cache()?;
    let files = [mnist::TRAIN_IMAGES, mnist::TRAIN_LABELS, mnist::TEST_IMAGES, mnist::TEST_LABELS];
    if files.iter().all(|&file| mnist::locate(&cache, file).is_ok()) {
        return Ok(cache);
    }
    anyhow::bail!(
        "no MNIST found: pass --data DIR (a directory with the four MNIST IDX files), set STARLING_DATA, \
         or run `starling data download` to fetch it into {}",
        cache.display()
    )
}

/// The MNIST directory for `starling demo`: `data` (from `--data` or
/// `STARLING_DATA`), else the download cache, else a download into the cache
/// from the public mirrors, verified by SHA-256. If none of those works the
/// error says what to do.
pub(crate) fn find_or_fetch_mnist(data: Option<PathBuf>) -> Result<PathBuf> {
    if data.is_some() {
        return locate_mnist(data);
    }
    if let Ok(dir) = locate_mnist(None) {
        return Ok(dir);
    }
    let cache = default_cache()?;
    eprintln!("MNIST is not in {}: downloading it (about 11 MB, verified by SHA-256)", cache.display());
    ensure_mnist(&cache, MNIST_MIRRORS).with_context(|| {
        format!(
            "MNIST could not be downloaded. Put the four MNIST IDX files (train-images-idx3-ubyte.gz, \
             train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; raw or gzip) in a \
             directory and pass --data DIR or set STARLING_DATA=DIR, or copy them into {} and run again",
            cache.display()
        )
    })
}

pub(crate) fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Download { cache } => {
            let cache = match cache {
                Some(c) => c,
                None => default_cache()?,
            };
            let dir = ensure_mnist(&cache, MNIST_MIRRORS)?;
            println!("MNIST is in {} (verified)", dir.display());
        }
        Command::Check { data, any_content } => {
            let verify = if any_content { Verify::ShapeOnly } else { Verify::Canonical };
            let mnist = Mnist::load(&data, verify)?;
            println!(
                "{}: {} training and {} test images of {}×{}, {} classes{}",
                data.display(),
                mnist.train.len(),
                mnist.test.len(),
                mnist.train.shape()[0],
                mnist.train.shape()[1],
                mnist.train.classes(),
                if any_content { "" } else { "; SHA-256 matches MNIST" }
            );
        }
    }
    Ok(())
}
