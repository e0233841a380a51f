//! `firehose history`: one signed request to a history route, or (`--all`) every row of a
//! range, paged as the route allows.

use std::io::Write as _;

use anyhow::Context as _;
use firehose_client::core::protocol::history::{Route, CYCLES, TOTAL_DATA};
use firehose_client::HttpClient;
use serde_json::{json, Map, Value};

use crate::keys::KeyArgs;

/// `firehose history`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Routes: /totalData, /cycleinfo, /receipt, /originalTx, /account, \
/transaction. The request is the route's JSON selector (`sender` and `sign` are added): \
{\"count\": 10}, {\"start\": 0, \"end\": 100}, {\"txId\": \"...\"}, {\"startCycle\": 5, \
\"type\": \"tally\"}.\n\n--all pages every row of {\"start\", \"end\"} (default: from the \
first row to the last /totalData counts) in requests as wide as the route allows, and prints \
one JSON line per row."
)]
pub struct Args {
    /// The route: `/totalData`, `/cycleinfo`, `/receipt`, `/originalTx`, `/account`,
    /// `/transaction` (the leading `/` may be left out).
    route: String,
    /// The request's JSON object.
    #[arg(default_value = "{}")]
    request: String,
    /// The distributor's HTTP address (a `ws://` address is taken as the same host and port).
    #[arg(long, default_value = "http://127.0.0.1:6100")]
    url: String,
    #[command(flatten)]
    keys: KeyArgs,
    /// Page through the request's `{start, end}` range and print every row as a JSON line.
    #[arg(long)]
    all: bool,
}

/// Sends the request(s) and prints the verified reply or rows.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let request: Value = serde_json::from_str(&args.request)
        .with_context(|| format!("request `{}` is not JSON", args.request))?;
    let Value::Object(request) = request else {
        anyhow::bail!("the request must be a JSON object, e.g. '{{\"count\": 10}}'");
    };
    let base = http_base(&args.url);
    let api = HttpClient::new(&base, args.keys.identity()?, args.keys.distributor()?)
        .with_crypto(args.keys.crypto()?);
    let path = format!("/{}", args.route.trim_start_matches('/'));
    if args.all {
        let route = Route::find(&path).with_context(|| {
            format!("--all pages /cycleinfo, /receipt, /originalTx, /account and /transaction, not {path}")
        })?;
        return page_all(&api, route, request).await;
    }
    let reply = api
        .post(&path, Value::Object(request))
        .await
        .with_context(|| format!("{base}{path}"))?;
    let text = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        serde_json::to_string_pretty(&reply)?
    } else {
        serde_json::to_string(&reply)?
    };
    println!("{text}");
    Ok(())
}

/// `ws://h:p` → `http://h:p`; anything else as given.
fn http_base(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    match url.split_once("://") {
        Some(("ws", rest)) => format!("http://{rest}"),
        Some(("wss", rest)) => format!("https://{rest}"),
        Some(_) => url.to_owned(),
        None => format!("http://{url}"),
    }
}

/// Every row of `request`'s `{start, end}` range.
async fn page_all(
    api: &HttpClient,
    route: Route,
    request: Map<String, Value>,
) -> anyhow::Result<()> {
    let number = |key: &str| -> anyhow::Result<Option<u64>> {
        request
            .get(key)
            .map(|v| {
                v.as_u64()
                    .with_context(|| format!("`{key}` must be a non-negative integer"))
            })
            .transpose()
    };
    let first = number("start")?.unwrap_or(0);
    let last = match number("end")? {
        Some(end) => end,
        None => match last_row(api, route).await? {
            Some(last) => last,
            None => {
                eprintln!("firehose history: {} has no rows", route.path);
                return Ok(());
            }
        },
    };
    let bar = indicatif::ProgressBar::new(last.saturating_sub(first).saturating_add(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows ({per_sec}, {eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut out = std::io::stdout().lock();
    for (start, end) in route.spans(first, last) {
        let mut body = request.clone();
        body.insert("start".into(), json!(start));
        body.insert("end".into(), json!(end));
        let reply = api
            .post(route.path, Value::Object(body))
            .await
            .with_context(|| format!("{} rows {start}..={end}", route.path))?;
        let rows = reply
            .get(route.rows)
            .and_then(Value::as_array)
            .with_context(|| format!("{} reply has no `{}` list", route.path, route.rows))?;
        for row in rows {
            match writeln!(out, "{}", serde_json::to_string(row)?) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(e).context("writing to stdout"),
            }
        }
        bar.inc(end - start + 1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// The last `end` of the route: the newest cycle's counter, or the last row offset.
async fn last_row(api: &HttpClient, route: Route) -> anyhow::Result<Option<u64>> {
    if route == CYCLES {
        let reply = api.post(route.path, json!({"count": 1})).await?;
        return Ok(reply
            .get(route.rows)
            .and_then(Value::as_array)
            .and_then(|rows| rows.first())
            .and_then(|c| c.get("counter"))
            .and_then(Value::as_u64));
    }
    let totals = api.post(TOTAL_DATA, json!({})).await?;
    let total = totals
        .get(route.total)
        .and_then(Value::as_u64)
        .with_context(|| format!("{TOTAL_DATA} reply has no `{}`", route.total))?;
    Ok(total.checked_sub(1))
}

#[cfg(test)]
mod tests {
    use super::http_base;

    #[test]
    fn websocket_addresses_become_http() {
        assert_eq!(http_base("ws://127.0.0.1:6100/"), "http://127.0.0.1:6100");
        assert_eq!(http_base("127.0.0.1:6100"), "http://127.0.0.1:6100");
        assert_eq!(http_base("https://d.example"), "https://d.example");
    }
}
