//! The configuration of `starling coordinator serve`: one struct, layered
//! built-in defaults < a TOML file < environment variables < flags
//! (STYLE §7). `--print-config` shows the result, each value with where it
//! came from, and never a database password.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use starling_coordinator::artifacts::ArtifactLocation;
use starling_coordinator::service::{
    DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, DEFAULT_MAX_MODEL_BYTES, DEFAULT_MAX_OPEN_TASKS_PER_CREATOR,
};
use starling_protocol::PublicKey;

/// Where the QUIC front listens unless told otherwise.
pub(crate) const DEFAULT_QUIC_ADDR: &str = "127.0.0.1:7700";
/// Where the HTTP API listens unless told otherwise.
pub(crate) const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:7780";

/// The flags of `starling coordinator serve`. Each setting is also a key of
/// the config file and an environment variable (listed in --help).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ServeArgs {
    /// A TOML file with any of the settings below (keys as the flags, with `_`: `quic_addr = "…"`).
    #[arg(long, env = "STARLING_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Print the merged configuration (without secrets) and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// Where the coordinator keeps its state: starling.db, artifacts/, tls/
    /// [env: STARLING_HOME] [default: ~/.local/share/starling]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// QUIC address for trainers, validators and every signed request
    /// [env: STARLING_QUIC_ADDR] [default: 127.0.0.1:7700]
    #[arg(long, value_name = "ADDR")]
    quic_addr: Option<SocketAddr>,
    /// HTTP address of the JSON API, or `off`
    /// [env: STARLING_HTTP_ADDR] [default: 127.0.0.1:7780]
    #[arg(long, value_name = "ADDR|off")]
    http_addr: Option<HttpAddr>,
    /// The database: a SQLite file path or `sqlite://PATH`, or `postgres://…`
    /// [env: STARLING_DATABASE_URL] [default: DATA_DIR/starling.db]
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The model store: a local directory, `file://DIR`, or `s3://BUCKET/PREFIX`
    /// (credentials, region and endpoint from the AWS_* environment variables)
    /// [env: STARLING_STORE_URL] [default: DATA_DIR/artifacts]
    #[arg(long, value_name = "URL")]
    store_url: Option<String>,
    /// The public key (64 hex digits) allowed to issue tokens with `starling admin issue`
    /// [env: STARLING_ADMIN_KEY] [required]
    #[arg(long, value_name = "KEY")]
    admin_key: Option<PublicKey>,
    /// How long a new task waits for trainers and validators to join before its first round
    /// [env: STARLING_JOIN_WINDOW_SECS] [default: 60]
    #[arg(long, value_name = "SECS")]
    join_window_secs: Option<u64>,
    /// How often each task's driver wakes to check deadlines, in milliseconds
    /// [env: STARLING_TICK_MS] [default: 250]
    #[arg(long, value_name = "MS")]
    tick_ms: Option<u64>,
    /// An MNIST directory: the coordinator measures each new global model on its test set
    /// [env: STARLING_EVAL_DATA] [default: none]
    #[arg(long, value_name = "DIR")]
    eval_data: Option<PathBuf>,
    /// Consensus score below which a submission is rejected as harmful and its trainer slashed
    /// [env: STARLING_HARM_THRESHOLD] [default: none]
    #[arg(long, value_name = "SCORE")]
    harm_threshold: Option<f64>,
    /// The largest model (and update) accepted, in bytes: larger tasks are refused before upload
    /// [env: STARLING_MAX_MODEL_BYTES] [default: 268435456, 256 MiB]
    #[arg(long, value_name = "BYTES")]
    max_model_bytes: Option<u64>,
    /// How many unfinished tasks one creator may have at once
    /// [env: STARLING_MAX_OPEN_TASKS] [default: 16]
    #[arg(long, value_name = "N")]
    max_open_tasks: Option<u64>,
    /// How many QUIC connections one client (an IPv4 address, an IPv6 /64) may hold open
    /// [env: STARLING_MAX_CONNECTIONS_PER_ADDRESS] [default: 64]
    #[arg(long, value_name = "N")]
    max_connections_per_address: Option<usize>,
    /// A CA-issued certificate chain (PEM) instead of the self-signed one in DATA_DIR/tls
    /// [env: STARLING_TLS_CERT] [default: none]
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert
    /// [env: STARLING_TLS_KEY] [default: none]
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// Where the HTTP API listens, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) enum HttpAddr {
    /// No HTTP API.
    Off,
    /// Listen here.
    At(SocketAddr),
}

impl FromStr for HttpAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "off" | "none" | "" => Ok(Self::Off),
            addr => addr
                .parse()
                .map(Self::At)
                .map_err(|_| format!("`{text}` is neither an address like 127.0.0.1:7780 nor `off`")),
        }
    }
}

impl TryFrom<String> for HttpAddr {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for HttpAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::At(addr) => write!(f, "{addr}"),
        }
    }
}

/// One layer of settings: what a file, the environment or the flags say.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    data_dir: Option<PathBuf>,
    quic_addr: Option<SocketAddr>,
    http_addr: Option<HttpAddr>,
    database_url: Option<String>,
    store_url: Option<String>,
    admin_key: Option<PublicKey>,
    join_window_secs: Option<u64>,
    tick_ms: Option<u64>,
    eval_data: Option<PathBuf>,
    harm_threshold: Option<f64>,
    max_model_bytes: Option<u64>,
    max_open_tasks: Option<u64>,
    max_connections_per_address: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

/// Each setting's key (in the file and in `--print-config`) and environment variable.
const KEYS: [(&str, &str); 15] = [
    ("data_dir", "STARLING_HOME"),
    ("quic_addr", "STARLING_QUIC_ADDR"),
    ("http_addr", "STARLING_HTTP_ADDR"),
    ("database_url", "STARLING_DATABASE_URL"),
    ("store_url", "STARLING_STORE_URL"),
    ("admin_key", "STARLING_ADMIN_KEY"),
    ("join_window_secs", "STARLING_JOIN_WINDOW_SECS"),
    ("tick_ms", "STARLING_TICK_MS"),
    ("eval_data", "STARLING_EVAL_DATA"),
    ("harm_threshold", "STARLING_HARM_THRESHOLD"),
    ("max_model_bytes", "STARLING_MAX_MODEL_BYTES"),
    ("max_open_tasks", "STARLING_MAX_OPEN_TASKS"),
    ("max_connections_per_address", "STARLING_MAX_CONNECTIONS_PER_ADDRESS"),
    ("tls_cert", "STARLING_TLS_CERT"),
    ("tls_key", "STARLING_TLS_KEY"),
];

/// Which layer a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Built in (or derived from `data_dir`).
    Default,
    /// The config file.
    File,
    /// An environment variable.
    Env,
    /// A command-line flag.
    Flag,
}

impl Layer {
    fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("the config file {} is invalid", path.display()))
    }

    /// The settings in environment variables, read through `var` (empty counts as unset).
    fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        fn parse<T: FromStr>(var: &dyn Fn(&str) -> Option<String>, key: &str) -> Result<Option<T>>
        where
            T::Err: fmt::Display,
        {
            let name = KEYS.iter().find(|(k, _)| *k == key).expect("a known key").1;
            match var(name).filter(|value| !value.trim().is_empty()) {
                None => Ok(None),
                Some(value) => {
                    value.trim().parse().map(Some).map_err(|e| anyhow::anyhow!("{name}=`{value}` is invalid: {e}"))
                }
            }
        }
        Ok(Self {
            data_dir: parse(var, "data_dir")?,
            quic_addr: parse(var, "quic_addr")?,
            http_addr: parse(var, "http_addr")?,
            database_url: parse(var, "database_url")?,
            store_url: parse(var, "store_url")?,
            admin_key: parse(var, "admin_key")?,
            join_window_secs: parse(var, "join_window_secs")?,
            tick_ms: parse(var, "tick_ms")?,
            eval_data: parse(var, "eval_data")?,
            harm_threshold: parse(var, "harm_threshold")?,
            max_model_bytes: parse(var, "max_model_bytes")?,
            max_open_tasks: parse(var, "max_open_tasks")?,
            max_connections_per_address: parse(var, "max_connections_per_address")?,
            tls_cert: parse(var, "tls_cert")?,
            tls_key: parse(var, "tls_key")?,
        })
    }

    fn from_flags(args: &ServeArgs) -> Self {
        Self {
            data_dir: args.data_dir.clone(),
            quic_addr: args.quic_addr,
            http_addr: args.http_addr,
            database_url: args.database_url.clone(),
            store_url: args.store_url.clone(),
            admin_key: args.admin_key,
            join_window_secs: args.join_window_secs,
            tick_ms: args.tick_ms,
            eval_data: args.eval_data.clone(),
            harm_threshold: args.harm_threshold,
            max_model_bytes: args.max_model_bytes,
            max_open_tasks: args.max_open_tasks,
            max_connections_per_address: args.max_connections_per_address,
            tls_cert: args.tls_cert.clone(),
            tls_key: args.tls_key.clone(),
        }
    }

    /// `self` with every setting `over` has replaced by it, noting `source` for those.
    fn overlay(self, over: Self, source: Source, sources: &mut BTreeMap<&'static str, Source>) -> Self {
        let mut pick = |key: &'static str, set: bool| {
            if set {
                sources.insert(key, source);
            }
        };
        pick("data_dir", over.data_dir.is_some());
        pick("quic_addr", over.quic_addr.is_some());
        pick("http_addr", over.http_addr.is_some());
        pick("database_url", over.database_url.is_some());
        pick("store_url", over.store_url.is_some());
        pick("admin_key", over.admin_key.is_some());
        pick("join_window_secs", over.join_window_secs.is_some());
        pick("tick_ms", over.tick_ms.is_some());
        pick("eval_data", over.eval_data.is_some());
        pick("harm_threshold", over.harm_threshold.is_some());
        pick("max_model_bytes", over.max_model_bytes.is_some());
        pick("max_open_tasks", over.max_open_tasks.is_some());
        pick("max_connections_per_address", over.max_connections_per_address.is_some());
        pick("tls_cert", over.tls_cert.is_some());
        pick("tls_key", over.tls_key.is_some());
        Self {
            data_dir: over.data_dir.or(self.data_dir),
            quic_addr: over.quic_addr.or(self.quic_addr),
            http_addr: over.http_addr.or(self.http_addr),
            database_url: over.database_url.or(self.database_url),
            store_url: over.store_url.or(self.store_url),
            admin_key: over.admin_key.or(self.admin_key),
            join_window_secs: over.join_window_secs.or(self.join_window_secs),
            tick_ms: over.tick_ms.or(self.tick_ms),
            eval_data: over.eval_data.or(self.eval_data),
            harm_threshold: over.harm_threshold.or(self.harm_threshold),
            max_model_bytes: over.max_model_bytes.or(self.max_model_bytes),
            max_open_tasks: over.max_open_tasks.or(self.max_open_tasks),
            max_connections_per_address: over.max_connections_per_address.or(self.max_connections_per_address),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
        }
    }
}

/// A database URL: its password never reaches `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct DatabaseUrl(String);

impl DatabaseUrl {
    /// A SQLite file path becomes `sqlite://PATH?mode=rwc` (created if missing);
    /// URLs pass as they are.
    fn new(text: &str) -> Self {
        if text.contains("://") || text.starts_with("sqlite:") {
            Self(text.to_owned())
        } else {
            Self(format!("sqlite://{text}?mode=rwc"))
        }
    }

    /// The URL with its password, to connect with.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatabaseUrl {
    /// The URL with any password (`user:PASSWORD@`, `password=…`) replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.0;
        let mut shown = match url.split_once("://") {
            Some((scheme, rest)) => {
                let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
                match rest[..authority_end].rsplit_once('@') {
                    Some((user_info, host)) if user_info.contains(':') => {
                        let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
                        format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
                    }
                    _ => url.clone(),
                }
            }
            None => url.clone(),
        };
        if let Some((base, query)) = shown.split_once('?') {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            shown = format!("{base}?{}", query.join("&"));
        }
        f.write_str(&shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// The coordinator's TLS identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tls {
    /// Self-signed, kept (and created on first start) in this directory.
    SelfSigned(PathBuf),
    /// CA-issued: certificate chain and key PEM files.
    Files {
        /// The chain, leaf first.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
}

/// The merged configuration of `starling coordinator serve`.
#[derive(Debug, Clone)]
pub(crate) struct ServeConfig {
    pub(crate) data_dir: PathBuf,
    pub(crate) quic_addr: SocketAddr,
    pub(crate) http_addr: HttpAddr,
    pub(crate) database_url: DatabaseUrl,
    /// The local directory holding model files.
    pub(crate) artifacts: ArtifactLocation,
    /// Required to serve; `--print-config` works without it.
    pub(crate) admin_key: Option<PublicKey>,
    pub(crate) join_window: Duration,
    pub(crate) tick: Duration,
    pub(crate) eval_data: Option<PathBuf>,
    pub(crate) harm_threshold: Option<f64>,
    pub(crate) max_model_bytes: u64,
    pub(crate) max_open_tasks: u64,
    pub(crate) max_connections_per_address: usize,
    pub(crate) tls: Tls,
    /// Where each explicitly set value came from (absent: the default).
    sources: BTreeMap<&'static str, Source>,
    /// The config file, if one was read.
    file: Option<PathBuf>,
}

/// `$XDG_DATA_HOME/starling`, else `~/.local/share/starling`.
fn default_data_dir(var: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    if let Some(dir) = var("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("starling"));
    }
    let home =
        var("HOME").filter(|h| !h.is_empty()).context("neither HOME nor XDG_DATA_HOME is set: pass --data-dir")?;
    Ok(PathBuf::from(home).join(".local/share/starling"))
}

impl ServeConfig {
    /// Merges defaults < the file (`--config` or `STARLING_CONFIG`) < the
    /// environment (read through `var`) < `args`.
    pub(crate) fn resolve(args: &ServeArgs, var: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let mut sources = BTreeMap::new();
        let file = match &args.config {
            Some(path) => Layer::from_file(path)?,
            None => Layer::default(),
        };
        let merged = Layer::default()
            .overlay(file, Source::File, &mut sources)
            .overlay(Layer::from_env(var)?, Source::Env, &mut sources)
            .overlay(Layer::from_flags(args), Source::Flag, &mut sources);
        let data_dir = match merged.data_dir {
            Some(dir) => dir,
            None => default_data_dir(var)?,
        };
        let database_url = match &merged.database_url {
            Some(url) => DatabaseUrl::new(url),
            None => DatabaseUrl::new(&data_dir.join("starling.db").display().to_string()),
        };
        let artifacts = match &merged.store_url {
            Some(url) => ArtifactLocation::parse(url).context("store_url")?,
            None => ArtifactLocation::Dir(data_dir.join("artifacts")),
        };
        let tls = match (merged.tls_cert, merged.tls_key) {
            (Some(cert), Some(key)) => Tls::Files { cert, key },
            (None, None) => Tls::SelfSigned(data_dir.join("tls")),
            _ => bail!("tls_cert and tls_key go together: set both (a CA-issued certificate) or neither (self-signed)"),
        };
        if let Some(threshold) = merged.harm_threshold
            && !threshold.is_finite()
        {
            bail!("harm_threshold must be a finite number");
        }
        if merged.max_model_bytes == Some(0) {
            bail!("max_model_bytes must be at least 1");
        }
        if merged.max_open_tasks == Some(0) {
            bail!("max_open_tasks must be at least 1");
        }
        if merged.max_connections_per_address == Some(0) {
            bail!("max_connections_per_address must be at least 1");
        }
        Ok(Self {
            quic_addr: merged.quic_addr.unwrap_or_else(|| DEFAULT_QUIC_ADDR.parse().expect("a valid default")),
            http_addr: merged.http_addr.unwrap_or_else(|| DEFAULT_HTTP_ADDR.parse().expect("a valid default")),
            database_url,
            artifacts,
            admin_key: merged.admin_key,
            join_window: Duration::from_secs(merged.join_window_secs.unwrap_or(60)),
            tick: Duration::from_millis(merged.tick_ms.unwrap_or(250).max(1)),
            eval_data: merged.eval_data,
            harm_threshold: merged.harm_threshold,
            max_model_bytes: merged.max_model_bytes.unwrap_or(DEFAULT_MAX_MODEL_BYTES),
            max_open_tasks: merged.max_open_tasks.unwrap_or(DEFAULT_MAX_OPEN_TASKS_PER_CREATOR),
            max_connections_per_address: merged
                .max_connections_per_address
                .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS),
            tls,
            data_dir,
            sources,
            file: args.config.clone(),
        })
    }

    /// Where `key` came from.
    pub(crate) fn source(&self, key: &str) -> Source {
        self.sources.get(key).copied().unwrap_or(Source::Default)
    }

    /// The configuration as a TOML file that would reproduce it, each line
    /// saying where its value came from; the database password is hidden.
    pub(crate) fn to_toml(&self) -> String {
        let string = |s: String| toml::Value::String(s).to_string();
        let path = |p: &Path| string(p.display().to_string());
        let (tls_cert, tls_key) = match &self.tls {
            Tls::Files { cert, key } => (Some(path(cert)), Some(path(key))),
            Tls::SelfSigned(_) => (None, None),
        };
        let values: [(&str, Option<String>); 15] = [
            ("data_dir", Some(path(&self.data_dir))),
            ("quic_addr", Some(string(self.quic_addr.to_string()))),
            ("http_addr", Some(string(self.http_addr.to_string()))),
            ("database_url", Some(string(self.database_url.to_string()))),
            ("store_url", Some(string(self.artifacts.to_string()))),
            ("admin_key", self.admin_key.map(|k| string(k.to_string()))),
            ("join_window_secs", Some(self.join_window.as_secs().to_string())),
            ("tick_ms", Some(self.tick.as_millis().to_string())),
            ("eval_data", self.eval_data.as_deref().map(path)),
            ("harm_threshold", self.harm_threshold.map(|t| toml::Value::Float(t).to_string())),
            ("max_model_bytes", Some(self.max_model_bytes.to_string())),
            ("max_open_tasks", Some(self.max_open_tasks.to_string())),
            ("max_connections_per_address", Some(self.max_connections_per_address.to_string())),
            ("tls_cert", tls_cert),
            ("tls_key", tls_key),
        ];
        let mut text = String::from("# starling coordinator serve: defaults < file < environment < flags\n");
        if let Some(file) = &self.file {
            text += &format!("# file: {}\n", file.display());
        }
        for ((key, value), (_, env)) in values.into_iter().zip(KEYS) {
            let from = match self.source(key) {
                Source::Default => "default".to_owned(),
                Source::File => "file".to_owned(),
                Source::Env => format!("env {env}"),
                Source::Flag => format!("flag --{}", key.replace('_', "-")),
            };
            text += &match value {
                Some(value) => format!("{key} = {value}  # {from}\n"),
                None if key == "admin_key" => format!("# {key} = (not set: required to serve)\n"),
                None => format!("# {key} = (not set)\n"),
            };
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_follow_the_data_dir() {
        let config = ServeConfig::resolve(&ServeArgs::default(), &env(&[("HOME", "/home/ada")])).unwrap();
        assert_eq!(config.data_dir, Path::new("/home/ada/.local/share/starling"));
        assert_eq!(config.database_url.expose(), "sqlite:///home/ada/.local/share/starling/starling.db?mode=rwc");
        assert_eq!(config.artifacts, ArtifactLocation::Dir("/home/ada/.local/share/starling/artifacts".into()));
        assert_eq!(config.tls, Tls::SelfSigned("/home/ada/.local/share/starling/tls".into()));
        assert_eq!(config.quic_addr.to_string(), DEFAULT_QUIC_ADDR);
        assert_eq!(config.http_addr.to_string(), DEFAULT_HTTP_ADDR);
        assert_eq!(config.admin_key, None);
        assert_eq!(config.max_model_bytes, DEFAULT_MAX_MODEL_BYTES);
        assert_eq!(config.max_open_tasks, DEFAULT_MAX_OPEN_TASKS_PER_CREATOR);
        assert_eq!(config.max_connections_per_address, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);
        assert_eq!(config.source("quic_addr"), Source::Default);

        let home = ServeConfig::resolve(&ServeArgs::default(), &env(&[("STARLING_HOME", "/srv/st")])).unwrap();
        assert_eq!(home.artifacts, ArtifactLocation::Dir("/srv/st/artifacts".into()));
        assert_eq!(home.source("data_dir"), Source::Env);
    }

    #[test]
    fn env_beats_file_and_flags_beat_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "quic_addr = \"127.0.0.1:1\"\nhttp_addr = \"off\"\njoin_window_secs = 5\ntick_ms = 7\n")
            .unwrap();
        let args = ServeArgs {
            config: Some(file),
            quic_addr: Some("127.0.0.1:3".parse().unwrap()),
            data_dir: Some("/d".into()),
            ..ServeArgs::default()
        };
        let var = env(&[("STARLING_QUIC_ADDR", "127.0.0.1:2"), ("STARLING_JOIN_WINDOW_SECS", "6")]);
        let config = ServeConfig::resolve(&args, &var).unwrap();
        assert_eq!(config.quic_addr.to_string(), "127.0.0.1:3");
        assert_eq!(config.join_window, Duration::from_secs(6));
        assert_eq!(config.tick, Duration::from_millis(7));
        assert_eq!(config.http_addr, HttpAddr::Off);
        assert_eq!(
            [config.source("quic_addr"), config.source("join_window_secs"), config.source("tick_ms")],
            [Source::Flag, Source::Env, Source::File]
        );
    }

    #[test]
    fn bad_settings_say_where_they_are() {
        let err = ServeConfig::resolve(&ServeArgs::default(), &env(&[("HOME", "/h"), ("STARLING_QUIC_ADDR", "nope")]))
            .unwrap_err();
        assert!(err.to_string().contains("STARLING_QUIC_ADDR=`nope`"), "{err}");
        let none = env(&[("HOME", "/h"), ("STARLING_MAX_MODEL_BYTES", "0")]);
        let err = ServeConfig::resolve(&ServeArgs::default(), &none).unwrap_err();
        assert!(err.to_string().contains("max_model_bytes must be at least 1"), "{err}");
        let none = env(&[("HOME", "/h"), ("STARLING_MAX_OPEN_TASKS", "0")]);
        let err = ServeConfig::resolve(&ServeArgs::default(), &none).unwrap_err();
        assert!(err.to_string().contains("max_open_tasks must be at least 1"), "{err}");
        let none = env(&[("HOME", "/h"), ("STARLING_MAX_CONNECTIONS_PER_ADDRESS", "0")]);
        let err = ServeConfig::resolve(&ServeArgs::default(), &none).unwrap_err();
        assert!(err.to_string().contains("max_connections_per_address must be at least 1"), "{err}");
        let crowd = env(&[("HOME", "/h"), ("STARLING_MAX_CONNECTIONS_PER_ADDRESS", "500")]);
        assert_eq!(ServeConfig::resolve(&ServeArgs::default(), &crowd).unwrap().max_connections_per_address, 500);
        let small = env(&[("HOME", "/h"), ("STARLING_MAX_MODEL_BYTES", "1048576")]);
        assert_eq!(ServeConfig::resolve(&ServeArgs::default(), &small).unwrap().max_model_bytes, 1 << 20);
        let args = ServeArgs { store_url: Some("gs://bucket/models".into()), ..ServeArgs::default() };
        let err = format!("{:#}", ServeConfig::resolve(&args, &env(&[("HOME", "/h")])).unwrap_err());
        assert!(err.contains("store_url") && err.contains("unknown scheme `gs://`"), "{err}");
        let args = ServeArgs { store_url: Some("s3://bucket/models".into()), ..ServeArgs::default() };
        let config = ServeConfig::resolve(&args, &env(&[("HOME", "/h")])).unwrap();
        assert_eq!(config.artifacts, ArtifactLocation::S3("s3://bucket/models".into()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "quic_adr = \"127.0.0.1:1\"\n").unwrap();
        let args = ServeArgs { config: Some(file), ..ServeArgs::default() };
        let err = format!("{:#}", ServeConfig::resolve(&args, &env(&[("HOME", "/h")])).unwrap_err());
        assert!(err.contains("quic_adr"), "{err}");
    }

    #[test]
    fn passwords_never_show() {
        let url = DatabaseUrl::new("postgres://app:s3cret@db.example:5432/starling?sslmode=require&password=x");
        assert_eq!(url.to_string(), "postgres://app:***@db.example:5432/starling?sslmode=require&password=***");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(DatabaseUrl::new("/var/lib/s.db").expose(), "sqlite:///var/lib/s.db?mode=rwc");
        assert_eq!(DatabaseUrl::new("postgres://db/x").to_string(), "postgres://db/x");
        assert_eq!(ArtifactLocation::parse("file:///srv/models").unwrap(), ArtifactLocation::Dir("/srv/models".into()));
    }
}
