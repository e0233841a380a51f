//! Key pairs: `keygen`, and the collector identity and distributor key the other
//! subcommands take.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use firehose_client::core::crypto::{Crypto, HashKey, KeyPair, PublicKey};
use firehose_client::core::protocol::{DEV_PUBLIC_KEY, DEV_SECRET_KEY};
use serde_json::{json, Value};

/// `firehose keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Write the key pair to this file (created with mode 0600; an existing file is kept)
    /// and print the `subscribers` entry for it. Without it the key pair goes to stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The entry's expirationTimestamp: this many days from now (0 = never expires).
    #[arg(long, default_value_t = 0)]
    expires_in_days: u64,
}

/// Who the subcommand is and whom it trusts.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// The collector's key: a `keygen` file (`{"publicKey", "secretKey"}`), a
    /// relayer-collector `config.json` (its `collectorInfo`), or a file holding the secret
    /// key in hex. Without it, the original's dev key pair (what the demo accepts).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// The distributor's public key (hex): every message must be signed by it. Default: the
    /// original's dev key, which the demo distributor signs with.
    #[arg(long, default_value = DEV_PUBLIC_KEY)]
    distributor_key: String,
    /// The network's hash key (hex), when it is not Shardus's default.
    #[arg(long)]
    hash_key: Option<String>,
}

impl KeyArgs {
    /// The collector's key pair (the dev pair, with a warning, when no file is given).
    pub fn identity(&self) -> anyhow::Result<KeyPair> {
        match &self.key_file {
            Some(path) => load(path),
            None => {
                eprintln!("firehose: no --key-file: using the dev collector key pair");
                Ok(KeyPair::from_secret_hex(DEV_SECRET_KEY)?)
            }
        }
    }

    /// The distributor's public key.
    pub fn distributor(&self) -> anyhow::Result<PublicKey> {
        PublicKey::from_hex(self.distributor_key.trim()).context("--distributor-key")
    }

    /// Hashing and signing with the configured hash key.
    pub fn crypto(&self) -> anyhow::Result<Crypto> {
        Ok(match &self.hash_key {
            Some(h) => Crypto::new(HashKey::from_hex(h.trim()).context("--hash-key")?),
            None => Crypto::default(),
        })
    }
}

/// Reads a key file: `{"secretKey", "publicKey"?}`, `{"collectorInfo": {...}}` or plain hex.
pub fn load(path: &Path) -> anyhow::Result<KeyPair> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--key-file {}", path.display()))?;
    let what = || format!("--key-file {}", path.display());
    let text = text.trim();
    if !text.starts_with('{') {
        return KeyPair::from_secret_hex(text).with_context(what);
    }
    let v: Value = serde_json::from_str(text).with_context(what)?;
    let info = v.get("collectorInfo").unwrap_or(&v);
    let secret = info
        .get("secretKey")
        .and_then(Value::as_str)
        .with_context(|| format!("{}: no `secretKey`", what()))?;
    let keys = KeyPair::from_secret_hex(secret.trim()).with_context(what)?;
    if let Some(public) = info.get("publicKey").and_then(Value::as_str) {
        let derived = keys.public_key().to_hex();
        anyhow::ensure!(
            public.trim().eq_ignore_ascii_case(&derived),
            "{}: publicKey {public} does not belong to the secret key (its public key is {derived})",
            what()
        );
    }
    Ok(keys)
}

/// `firehose keygen`: a fresh pair, to stdout or to a new 0600 file.
pub fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    let keys = KeyPair::generate();
    let public = keys.public_key().to_hex();
    let pair = json!({"publicKey": public, "secretKey": keys.secret_key_hex()});
    let Some(out) = &args.out else {
        println!("{}", serde_json::to_string_pretty(&pair)?);
        return Ok(());
    };
    let mut file = open_new_private(out)?;
    writeln!(file, "{}", serde_json::to_string_pretty(&pair)?)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", out.display()))?;
    let expires = match args.expires_in_days {
        0 => 0,
        days => {
            firehose_client::core::since::now_ms().saturating_add(days.saturating_mul(86_400_000))
        }
    };
    let entry = json!({
        "publicKey": public,
        "expirationTimestamp": expires,
        "subscriptionType": "FIREHOSE",
    });
    eprintln!(
        "wrote {}; add this entry to `subscribers` in distributor-config.json:",
        out.display()
    );
    println!("{}", serde_json::to_string_pretty(&entry)?);
    Ok(())
}

/// Creates `path` for writing, readable by its owner only; an existing file is an error.
fn open_new_private(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "creating {} (an existing key file is never overwritten)",
                path.display()
            )
        })
}
