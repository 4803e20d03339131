//! `starling market list|show|pull|predict`: the model marketplace over the
//! coordinator's HTTP API. Reads need nothing; `predict` signs its request
//! with your identity and pays from your free quota, then your balance.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use starling_protocol::{ContentHash, Nonce, PREDICT_ENVELOPE_HEADER, PredictRequest, SignedEnvelope};

use crate::client::ClientArgs;
use crate::units::{now_ms, parse_star, star, utc};
use crate::untrusted::{file_stem, text};

/// The largest model file `pull` accepts (the API serves the coordinator's own files; this bounds a bad server).
const MAX_MODEL_BYTES: u64 = 2 << 30;

/// The marketplace's commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List the marketplace's models with their latest version.
    List(ListArgs),
    /// Show a model: every version, its metrics and lineage.
    Show(ShowArgs),
    /// Download a version's safetensors file, checked against its hash.
    Pull(PullArgs),
    /// Classify images with a model; signed, paid from your free quota then your balance.
    Predict(Box<PredictArgs>),
}

/// Where the HTTP API is.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Api {
    /// The coordinator's HTTP API, e.g. http://127.0.0.1:7780.
    #[arg(long, env = "STARLING_API", value_name = "URL", default_value = "http://127.0.0.1:7780")]
    api: String,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.trim_end_matches('/'))
    }
}

/// `market list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    api: Api,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `market show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    api: Api,
    /// The model's id.
    id: u64,
    /// Print the API's JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `market pull`. (`--version` picks the model's version here, not the program's.)
#[derive(Debug, clap::Args)]
#[command(disable_version_flag = true)]
pub(crate) struct PullArgs {
    #[command(flatten)]
    api: Api,
    /// The model's id.
    id: u64,
    /// The version (default: the latest).
    #[arg(long, value_name = "N")]
    version: Option<u32>,
    /// Where to write the file (default: NAME-vVERSION.safetensors here).
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// `market predict`.
#[derive(Debug, clap::Args)]
#[command(disable_version_flag = true)]
pub(crate) struct PredictArgs {
    #[command(flatten)]
    api: Api,
    /// Your identity (only its key file is used: --key).
    #[command(flatten)]
    client: ClientArgs,
    /// The model's id.
    id: u64,
    /// The version (default: the latest).
    #[arg(long, value_name = "N")]
    version: Option<u32>,
    /// A PNG image to classify (grayscale or colour; white digit on black, like MNIST).
    #[arg(long, value_name = "FILE", conflicts_with = "inputs")]
    image: Option<PathBuf>,
    /// A JSON file `{"inputs": [[784 values in 0..1], …]}`.
    #[arg(long, value_name = "FILE", required_unless_present = "image")]
    inputs: Option<PathBuf>,
    /// The most you agree to pay for this call, in STAR.
    #[arg(long, value_parser = parse_star, value_name = "STAR", default_value = "0.01")]
    max_fee: u64,
    /// Print the API's JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::List(args) => list(&args),
        Command::Show(args) => show(&args),
        Command::Pull(args) => pull(&args),
        Command::Predict(args) => predict(&args),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .new_agent()
}

/// The JSON body of a successful answer, or the API's error message.
fn json_of(what: &str, response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value> {
    let mut response = response.with_context(|| format!("{what}: the API could not be reached"))?;
    let status = response.status();
    let answer = response.body_mut().read_to_string().with_context(|| format!("{what}: reading the answer"))?;
    let body: Value =
        serde_json::from_str(&answer).with_context(|| format!("{what}: the answer is not JSON ({status})"))?;
    if !status.is_success() {
        let message = text(&body["error"]["message"]);
        let code = text(&body["error"]["code"]);
        bail!("{what}: {status} {code}: {message}");
    }
    Ok(body)
}

fn model(api: &Api, id: u64) -> Result<Value> {
    json_of(&format!("model {id}"), agent().get(&api.url(&format!("/api/models/{id}"))).call())
}

fn accuracy(value: &Value) -> String {
    value.as_f64().map_or_else(|| "–".to_owned(), |a| format!("{:.2}%", a * 100.0))
}

fn list(args: &ListArgs) -> Result<()> {
    let mut rows = Vec::new();
    let mut cursor: Option<u64> = None;
    loop {
        let path = match cursor {
            Some(c) => format!("/api/models?limit=100&cursor={c}"),
            None => "/api/models?limit=100".to_owned(),
        };
        let page = json_of("listing models", agent().get(&args.api.url(&path)).call())?;
        rows.extend(page["items"].as_array().cloned().unwrap_or_default());
        // Cursors are opaque decimal strings.
        match page["next_cursor"].as_str().and_then(|c| c.parse().ok()) {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no models yet: a model is promoted when its task finishes");
        return Ok(());
    }
    println!("{:>4}  {:<20} {:>8} {:>10} {:>10}  creator", "id", "name", "version", "consensus", "measured");
    for row in rows {
        let latest = &row["latest"];
        println!(
            "{:>4}  {:<20} {:>8} {:>10} {:>10}  {}",
            row["id"],
            text(&row["name"]),
            latest["version"],
            accuracy(&latest["consensus_accuracy"]),
            accuracy(&latest["accuracy"]),
            text(&row["creator"]),
        );
    }
    Ok(())
}

fn show(args: &ShowArgs) -> Result<()> {
    let model = model(&args.api, args.id)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&model)?);
        return Ok(());
    }
    println!("model {} — {}", model["id"], text(&model["name"]));
    println!("creator       {}", text(&model["creator"]));
    println!("input         {} → {} classes", model["input_shape"], model["num_classes"]);
    for version in model["versions"].as_array().into_iter().flatten() {
        let price = &version["price"];
        println!();
        println!(
            "version {} (task {}, round {} of {}; promoted {})",
            version["version"],
            version["task"],
            version["round"],
            version["rounds"],
            utc(version["promoted_at"].as_u64().unwrap_or(0))
        );
        println!(
            "  accuracy    {} by the validators' consensus, {} measured (loss {})",
            accuracy(&version["consensus_accuracy"]),
            accuracy(&version["accuracy"]),
            version["loss"].as_f64().map_or_else(|| "–".to_owned(), |l| format!("{l:.4}"))
        );
        println!("  file        {} ({} bytes)", text(&version["hash"]), version["size_bytes"]);
        println!(
            "  price       {} per call + {} per input",
            star(price["base"].as_u64().unwrap_or(0)),
            star(price["per_item"].as_u64().unwrap_or(0))
        );
        for contributor in version["contributors"].as_array().into_iter().flatten() {
            println!(
                "  {:<9}   {} earned {}",
                text(&contributor["role"]),
                text(&contributor["key"]),
                star(contributor["earned"].as_u64().unwrap_or(0))
            );
        }
    }
    Ok(())
}

/// The version entry `version` (or the latest) of a model's detail.
fn version_of(model: &Value, version: Option<u32>) -> Result<Value> {
    let versions = model["versions"].as_array().cloned().unwrap_or_default();
    let found = match version {
        None => versions.first().cloned(),
        Some(v) => versions.into_iter().find(|entry| entry["version"].as_u64() == Some(u64::from(v))),
    };
    found.with_context(|| match version {
        Some(v) => format!("model {} has no version {v}", model["id"]),
        None => format!("model {} has no versions", model["id"]),
    })
}

fn pull(args: &PullArgs) -> Result<()> {
    let model = model(&args.api, args.id)?;
    let version = version_of(&model, args.version)?;
    let number = version["version"].as_u64().context("version number")?;
    let expected: ContentHash =
        version["hash"].as_str().context("version hash")?.parse().map_err(|e| anyhow::anyhow!("version hash: {e}"))?;
    // The name is the server's: it may not choose where the file goes.
    let name = file_stem(model["name"].as_str().unwrap_or(""), "model");
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("{name}-v{number}.safetensors")));
    let url = args.api.url(&format!("/api/models/{}/versions/{number}/download", args.id));
    let mut response = agent().get(&url).call().context("downloading: the API could not be reached")?;
    ensure!(response.status().is_success(), "downloading: {}", response.status());
    let mut reader = response.body_mut().with_config().limit(MAX_MODEL_BYTES).reader();
    let bytes = write_checked(&mut reader, &out, expected)?;
    println!("wrote {} ({bytes} bytes, BLAKE3 {expected} checked)", out.display());
    Ok(())
}

/// Streams `reader` to `out` through a temporary file beside it, renamed
/// into place only if the bytes hash to `expected`: a cut or corrupted
/// download never leaves a file that looks whole.
fn write_checked(reader: &mut impl Read, out: &Path, expected: ContentHash) -> Result<u64> {
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let partial = dir.join(format!(".{}.partial", out.file_name().and_then(|n| n.to_str()).unwrap_or("model")));
    let mut file = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0; 256 * 1024];
    let mut total = 0u64;
    let result = (|| -> Result<()> {
        loop {
            let n = reader.read(&mut buf).context("downloading")?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).with_context(|| format!("writing {}", partial.display()))?;
            total += n as u64;
        }
        let actual = ContentHash::from_bytes(*hasher.finalize().as_bytes());
        ensure!(actual == expected, "the download hashes to {actual}, not {expected}: refused");
        file.sync_all().with_context(|| format!("syncing {}", partial.display()))?;
        std::fs::rename(&partial, out).with_context(|| format!("moving the file to {}", out.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result.map(|()| total)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn predict(args: &PredictArgs) -> Result<()> {
    let identity = args.client.identity()?;
    let model = model(&args.api, args.id)?;
    let number = u32::try_from(version_of(&model, args.version)?["version"].as_u64().context("version number")?)?;
    let (body, content_type) = match (&args.image, &args.inputs) {
        (Some(image), _) => {
            (std::fs::read(image).with_context(|| format!("reading {}", image.display()))?, "image/png")
        }
        (None, Some(inputs)) => {
            (std::fs::read(inputs).with_context(|| format!("reading {}", inputs.display()))?, "application/json")
        }
        (None, None) => bail!("give --image FILE.png or --inputs FILE.json"),
    };
    let request =
        PredictRequest { model: args.id, version: number, body_hash: ContentHash::of(&body), max_fee: args.max_fee };
    let nonce = Nonce::generate(&mut rand::rng());
    let envelope = SignedEnvelope::sign(identity.signing_key(), &request, nonce, now_ms())?.to_bytes()?;
    let url = args.api.url(&format!("/api/models/{}/versions/{number}/predict", args.id));
    let response = agent()
        .post(&url)
        .header("content-type", content_type)
        .header(PREDICT_ENVELOPE_HEADER, hex(&envelope))
        .send(&body[..]);
    let answer = json_of("predicting", response)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    for (i, item) in answer["predictions"].as_array().into_iter().flatten().enumerate() {
        let label = item["label"].as_u64().unwrap_or(0);
        let p = item["probabilities"][usize::try_from(label)?].as_f64().unwrap_or(0.0);
        println!("input {i}: {label} ({:.1}%)", p * 100.0);
    }
    let charged = answer["charged"].as_u64().unwrap_or(0);
    let quota = answer["quota_left"].as_u64().map_or_else(String::new, |q| format!("; {q} free inputs left today"));
    println!("charged {} ({} inputs free{quota})", star(charged), answer["free_items"]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_is_kept_only_if_it_hashes_right() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.safetensors");
        let bytes = b"model bytes".to_vec();
        let wrong = ContentHash::of(b"other bytes");
        let refused = write_checked(&mut bytes.as_slice(), &out, wrong).unwrap_err();
        assert!(refused.to_string().contains("refused"), "{refused}");
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no partial file left");
        assert_eq!(write_checked(&mut bytes.as_slice(), &out, ContentHash::of(&bytes)).unwrap(), 11);
        assert_eq!(std::fs::read(&out).unwrap(), bytes);
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
